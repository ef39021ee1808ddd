using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// The commit protocol of one run (docs/cluster.md), as its grain applies it: 1. each rank Begins the checkpoint and
/// gets the attempt it writes under; 2. each rank writes its shard straight into the store; 3. each rank Reports its
/// shard, and the report that completes the set commits: manifest, catalog, tag, retention, one state write;
/// 4. ranks that reported AwaitCommit. Runs inside its grain (<see cref="IRunShell"/>): one activation, the exclusive
/// section for changes to durable state, and the state write.
/// </summary>
internal sealed class CommitProtocol(RunId run, IPersistentState<RunState> state, RunCatalog catalog, RunRetention retention, RunJanitor janitor,
    AccountingChannel accounting, Func<ITenantAccounting> tenant, ICheckpointStore store, RunGrainOptions options, TimeProvider time,
    SiloMetrics metrics, RunHistoryLog history, IRunShell shell, ILogger logger)
{
    private readonly PendingCheckpoints _pending = new(run);
    private RunState State => state.State;
    private KeyValuePair<string, object?> TenantTag => SiloMetrics.Tenant(run.Tenant);

    /// <summary>The ranks of <paramref name="pending"/> whose report this activation does not hold, lowest first.</summary>
    public IReadOnlyList<int> ReportsMissing(PendingCheckpoint pending) => _pending.ReportsMissing(pending);

    /// <summary>What rank <paramref name="rank"/> of <paramref name="pending"/> writes under (for its storage grant).</summary>
    public CheckpointAttempt AttemptFor(PendingCheckpoint pending, int rank) => _pending.AttemptFor(pending, rank);

    /// <summary>The activation ends: ranks waiting on collected reports are told to report again.</summary>
    public void Deactivating() => _pending.Deactivating();

    /// <summary>A new attempt started: checkpoints begun by earlier attempts can never complete now.</summary>
    public void AbortStale()
    {
        foreach (var stale in State.Pending.Values.Where(p => p.Epoch < State.Epoch).ToList()) Abort(stale, AbortReason.Superseded, "superseded by a new attempt");
    }

    /// <summary>Abandons checkpoints with no progress for the pending timeout; true when any was.</summary>
    public bool AbortExpired(DateTimeOffset now)
    {
        var expired = State.Pending.Values.Where(p => p.LastProgressUtc < now - options.PendingTimeout).ToList();
        foreach (var pending in expired) Abort(pending, AbortReason.Expired, $"no progress for {options.PendingTimeout}");
        return expired.Count > 0;
    }

    public Task<CheckpointAttempt> BeginAsync(BeginCheckpointRequest request) => shell.Exclusive(async () =>
    {
        shell.EnsureCreated(); // inside the exclusive section: a Delete queued before this Begin has run by now
        shell.CheckEpoch(request.Epoch);
        var now = time.GetUtcNow();
        var pending = _pending.Begin(State, request, now, out var isNew, out var superseded);
        if (!isNew) return _pending.AttemptFor(pending, request.Rank); // a retried or a further rank's Begin: same attempt, no write
        if (superseded is not null) Abort(superseded, AbortReason.Superseded, "begun again by a newer attempt");
        State.Pending[request.Name] = pending;
        await shell.WriteOrReloadAsync();
        shell.AfterDurableChange();
        shell.KeepActive(options.PendingTimeout + options.SweepPeriod * 2); // until the sweep could expire it; the reminder covers a crash of this silo
        _pending.RecordBegin(pending, request.Rank, now);
        return _pending.AttemptFor(pending, request.Rank);
    });

    public async Task<ShardAck> ReportAsync(ShardReport report, TimeSpan waitForCommit)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(report.Epoch);
        if (_pending.CommittedRecord(catalog, report.Name, report.AttemptId) is { } committed) return new ShardAck(true, 0, committed); // a retry after the commit
        var collector = _pending.CollectorFor(State, report.Name, report.AttemptId)
            ?? throw new RunRefusedException($"No pending checkpoint {report.Name} attempt {report.AttemptId} in run {run}: it expired, was aborted, or was never begun.");
        collector.Add(report, ReportChecks.Check(collector.Pending, report), time.GetUtcNow());
        collector.Pending.LastProgressUtc = time.GetUtcNow();
        if (collector.Missing == 0) return new ShardAck(true, 0, await shell.Exclusive(() => CommitAsync(collector)));
        return await PendingCheckpoints.WaitForCommitAsync(collector, options.CappedWait(waitForCommit), time) is { } committedMeanwhile
            ? new ShardAck(true, 0, committedMeanwhile)
            : new ShardAck(false, collector.Missing, null);
    }

    public async Task<CommitWait> AwaitAsync(CommitWaitRequest request)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(request.Epoch);
        if (_pending.Collecting(request.Name) is { } collector && collector.Pending.AttemptId == request.AttemptId)
        {
            if (request.Rank < 0 || request.Rank >= collector.Pending.WorldSize || !collector.Holds(request.Rank))
                return new CommitWait(CommitWaitStatus.ReportAgain, null, collector.Missing);
            return await PendingCheckpoints.WaitForCommitAsync(collector, options.CappedWait(request.MaxWait), time) is { } committed
                ? new CommitWait(CommitWaitStatus.Committed, committed, 0)
                : new CommitWait(CommitWaitStatus.Waiting, null, collector.Missing);
        }
        if (_pending.CommittedRecord(catalog, request.Name, request.AttemptId) is { } record) return new CommitWait(CommitWaitStatus.Committed, record, 0);
        if (State.Pending.TryGetValue(request.Name, out var pending) && pending.AttemptId == request.AttemptId)
            return new CommitWait(CommitWaitStatus.ReportAgain, null, pending.WorldSize);
        throw _pending.AbandonedRefusal(request.Name, request.AttemptId)
            ?? new RunRefusedException($"Checkpoint {request.Name} attempt {request.AttemptId} of {run} was abandoned before every rank reported (see the run grain's log).");
    }

    /// <summary>Step 3 ends here: every rank reported; the manifest is written, then the catalog, in one state write.</summary>
    private async Task<CheckpointRecord> CommitAsync(CommitCollector collector)
    {
        var pending = collector.Pending;
        // Between the last report and here an exclusive change (a new attempt, the sweep) may have abandoned it.
        if (!_pending.IsCurrent(collector)) return await collector.Outcome.Task;
        var folder = StoreLayout.CheckpointKey(run.StorePrefix, pending.Name);
        var manifestKey = StoreLayout.ManifestKey(folder);
        // A child of the Orleans call span of the report that completed the checkpoint, so of that rank's save span.
        using var activity = CheckpointTracing.Start(CheckpointTracing.Commit, pending.Name);
        activity?.SetTag(CheckpointTracing.RunTag, run.Key);
        try
        {
            var (manifest, manifestBytes) = ReportChecks.BuildManifest(collector, run, folder, time.GetUtcNow());
            if (options.ChecksStoredSizes) await ReportChecks.ThrowIfStoredSizesDifferAsync(store, manifest, folder);
            // What the tenant is charged is what the store holds: the shards (checked just now) and the manifest with the non-tensor state.
            var storedBytes = manifest.WrittenBytes + manifestBytes.Length;
            activity?.SetTag(CheckpointTracing.BytesTag, storedBytes);
            var replaced = catalog.Find(pending.Name);
            await accounting.EnsureGrantAsync(tenant(), run.Run, retention.RetainedBytes - (replaced?.Bytes ?? 0) + storedBytes, time.GetUtcNow());
            await janitor.WaitForAsync(folder); // an owed deletion of an earlier checkpoint of this name must not take the new manifest
            var reuses = manifest.Shards.Where(sh => sh.Checkpoint is not null).Select(sh => StoreLayout.ReusedShard(sh.Checkpoint!, sh.Path)).ToList();
            retention.ThrowIfNotStored(pending.Name, reuses);
            await store.WriteBytesAsync(manifestKey, manifestBytes);
            retention.ThrowIfNotStored(pending.Name, reuses); // again: an eviction meanwhile may have released a shard this checkpoint reuses
            var record = new CheckpointRecord(pending.Name, pending.Iteration, storedBytes, pending.WorldSize, manifest.CreatedUtc,
                manifestKey, pending.AttemptId, pending.Epoch, reuses.Count > 0 ? reuses : null);
            State.Pending.Remove(pending.Name);
            if (replaced is not null)
            {
                catalog.Remove(replaced);
                retention.Release(replaced, includesManifest: false);
            }
            catalog.Insert(record);
            var tagged = State.LastCheckpoint is { } last ? catalog.Find(last) : null;
            if (tagged is null || (record.Iteration ?? long.MaxValue) >= (tagged.Iteration ?? long.MinValue)) State.LastCheckpoint = record.Name;
            if (State.CheckpointRequest is { } request && request.RequestedUtc <= pending.StartedUtc) State.CheckpointRequest = null;
            Evict();
            retention.ReleaseUnreferencedHeld();
            await shell.WriteOrReloadAsync();
            metrics.Commits.Add(1, TenantTag);
            metrics.CommitDuration.Record((time.GetUtcNow() - pending.StartedUtc).TotalSeconds, TenantTag);
            history.Add(_pending.Committed(collector, record, time.GetUtcNow()), time.GetUtcNow());
            shell.AfterDurableChange();
            return record;
        }
        catch (RunRefusedException e)
        {
            // The checkpoint can never commit as reported (over the tenant's limit, shards that do not match the plan): abandon it.
            CheckpointTracing.RecordFailure(activity, e);
            Abort(pending, AbortReason.Refused, e.Message, e);
            await shell.WriteOrReloadAsync();
            shell.AfterDurableChange();
            throw;
        }
        catch (Exception e)
        {
            // A storage fault the store's own retries did not overcome: the pending checkpoint stays durable, so every rank
            // reports again and the commit is tried again (by a fresh activation when the state write failed).
            CheckpointTracing.RecordFailure(activity, e);
            var moved = e as RunMovedException ?? new RunMovedException($"Committing {pending.Name} of {run} failed ({e.GetType().Name}: {e.Message}); report again.");
            if (e is not RunMovedException) logger.LogWarning(e, "Run {Run}: committing {Name} failed; the ranks report again", run, pending.Name);
            _pending.CommitFailed(collector, moved);
            throw moved;
        }
        finally
        {
            accounting.CommitEnded();
        }
    }

    public void Evict()
    {
        foreach (var evicted in retention.Evict()) logger.LogDebug("Run {Run} evicts {Name} (max_to_keep={Keep})", run, evicted.Name, State.Policy.MaxToKeep);
    }

    /// <summary>Ranks waiting for it fail with <paramref name="refusal"/> (or one naming <paramref name="cause"/>); its shards are owed a deletion.</summary>
    private void Abort(PendingCheckpoint pending, string reason, string cause, RunRefusedException? refusal = null)
    {
        _pending.Abandon(pending, refusal ?? new RunRefusedException($"Checkpoint {pending.Name} of {run} was abandoned: {cause}."));
        State.Pending.Remove(pending.Name);
        retention.ReleaseAbandoned(pending);
        metrics.Aborts.Add(1, TenantTag, new KeyValuePair<string, object?>("reason", reason));
        logger.LogWarning("Run {Run}: checkpoint {Name} attempt {Attempt} abandoned: {Cause}", run, pending.Name, pending.AttemptId, cause);
    }
}
