using Orleans.Concurrency;
using Orleans.Runtime;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

/// <summary>
/// The single writer of one run's catalog (DESIGN.md §6, §13). The grain is reentrant so that ranks
/// long-polling <see cref="AwaitCommit"/> never hold up the Begins and reports they wait for; every
/// change to durable state runs under <see cref="_exclusive"/>, one at a time, so each check-then-act
/// below is atomic with respect to other callers. Reports are added synchronously (no await) outside it.
/// <para>
/// One durable state write per phase: the first rank's Begin, and the commit. Reports are held in
/// memory and ranks send them again after a failover; the tensor index lives in the manifest only.
/// Deletions (evicted, replaced, abandoned) are recorded in the commit's write and done in the
/// background after the acknowledgement; retained bytes are checked against a grant from the
/// tenant and reported to it off the commit path.
/// </para>
/// <para>
/// Placed on the silo that receives its first call: an Orleans client sends every call for one grain
/// through the same gateway (it buckets by grain id), so an agent's calls are then served where they
/// arrive instead of being forwarded to another silo and back.
/// </para>
/// </summary>
[Reentrant]
[Orleans.Placement.PreferLocalPlacement]
public sealed class TrainingRunGrain(
    [PersistentState("run", GrainStorage.Runs)] IPersistentState<RunState> state,
    [PersistentState("history", GrainStorage.Runs)] IPersistentState<RunHistory> history,
    [PersistentState("catalog", GrainStorage.Runs)] IPersistentState<CatalogArchive> archive,
    ICheckpointStoreProvider stores,
    IOptions<RunGrainOptions> options,
    TimeProvider time,
    SiloMetrics metrics,
    ILogger<TrainingRunGrain> logger) : Grain, ITrainingRunGrain, IRunAccounting, IRemindable
{
    private const string SweepReminder = "sweep";
    /// <summary>How many sweep periods a history entry may wait to be written (5 minutes by default).</summary>
    private const int HistoryDelayInSweeps = 5;
    private RunId _id = null!;
    private readonly Dictionary<string, CommitCollector> _collecting = new(StringComparer.Ordinal);
    /// <summary>When each rank began a pending checkpoint, as this activation saw it (for the history; lost with the activation).</summary>
    private readonly Dictionary<string, (string AttemptId, DateTimeOffset?[] Begun)> _begun = new(StringComparer.Ordinal);
    private readonly BackgroundDeletions _deletions = new();
    private TenantGrant? _grant;
    /// <summary>Revocations this activation answered: a grant that arrives after one is not kept.</summary>
    private int _revocations;
    /// <summary>What the run retains once the commit in flight lands (0 when none is): a revocation must not report less.</summary>
    private long _committingTo;
    private readonly AccountingChannel _accounting = new();
    /// <summary>Armed by a change in retained bytes; when it fires, the tenant is told (see <see cref="RunGrainOptions.TenantReportDelay"/>).</summary>
    private IGrainTimer? _tenantReport;
    private bool _reminderRegistered;
    private RunHistoryLog _history = null!;
    private readonly RunCatalog _catalog = new(state, archive, options.Value.CatalogTailLimit);
    private Task? _sealing;
    /// <summary>A state write failed: memory may be ahead of what is durable until the grain deactivates, so no change may build on it.</summary>
    private bool _reloading;
    private readonly SemaphoreSlim _exclusive = new(1, 1);
    private readonly Dictionary<string, (string AttemptId, RunRefusedException Refusal)> _abandoned = new(StringComparer.Ordinal);
    private const int MaxRememberedAbandoned = 64;
    private RunState S => state.State;
    private ICheckpointStore Store => stores.Store;
    private ITenantAccounting TenantAccounting => GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _id = RunId.Parse(this.GetPrimaryKeyString());
        _history = new RunHistoryLog(history, logger, _id);
        _catalog.Restore();
        await _history.AdoptAsync(S.LegacyHistory);
        this.RegisterGrainTimer(SweepAsync, new GrainTimerCreationOptions(options.Value.SweepPeriod, options.Value.SweepPeriod) { Interleave = false, KeepAlive = false });
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        foreach (var collector in _collecting.Values)
            collector.Outcome.TrySetException(new RunMovedException($"Run {_id} moved while {collector.Pending.Name} was collecting reports; report again."));
        await _history.FlushIfDueAsync(time.GetUtcNow(), maxDelay: null);
        if (_sealing is { } sealing) await sealing; // the next activation must read the archive this one wrote
        var release = _grant is not null;
        var reportDue = CancelTenantReport();
        if (!release && !reportDue) return;
        _grant = null;
        try { await _accounting.Report(TenantAccounting, _id.Run, RetainedBytes, release); }
        catch (Exception e) { logger.LogWarning(e, "Run {Run}: giving back the retained-bytes grant failed; the tenant keeps counting it until the run reports again", _id); }
    }

    public Task<RunView> Create(PeriodicPolicy policy) => Exclusive(() => CreateCore(policy));

    private async Task<RunView> CreateCore(PeriodicPolicy policy)
    {
        policy.Validated();
        if (S.Created)
        {
            if (S.Policy == policy) return View();
            throw new RunRefusedException($"Run {_id} already exists with policy {S.Policy}; use SetPolicy to change it.");
        }
        await TenantAccounting.RegisterRun(_id.Run);
        S.Created = true;
        S.Policy = policy;
        S.CreatedUtc = time.GetUtcNow();
        await WriteOrReloadAsync();
        logger.LogInformation("Run {Run} created with {Policy}", _id, policy);
        return View();
    }

    public Task<CatalogRecoveryReport> RecoverCatalog(PeriodicPolicy policyIfLost) => Exclusive(async () =>
    {
        if (!S.Created) await CreateCore(policyIfLost);
        var found = await CatalogRecovery.FindAsync(Store, _id, S.Epoch, name => _catalog.Find(name) is not null || S.Pending.ContainsKey(name));
        foreach (var record in found.Adopt) _catalog.Insert(record);
        S.Held.AddRange(found.Held.Where(held => S.Held.All(h => h.Name != held.Name)));
        if (S.LastCheckpoint is not { } last || _catalog.Find(last) is null) S.LastCheckpoint = _catalog.Entries.LastOrDefault()?.Name;
        await WriteOrReloadAsync();
        AfterDurableChange();
        logger.LogWarning("Run {Run}: catalog recovered from the store: adopted {Adopted}, refused {Refused}; last = {Last}",
            _id, string.Join(", ", found.Adopt.Select(r => r.Name)), string.Join("; ", found.Refused.Select(r => $"{r.Name}: {r.Reason}")), S.LastCheckpoint);
        return new CatalogRecoveryReport(found.Adopt.Select(r => r.Name).ToList(), found.Refused, S.LastCheckpoint);
    });

    public Task<RunView> Get()
    {
        EnsureCreated();
        return Task.FromResult(View());
    }

    public Task<RunView> SetPolicy(PeriodicPolicy policy) => Exclusive(() => SetPolicyCore(policy));

    private async Task<RunView> SetPolicyCore(PeriodicPolicy policy)
    {
        EnsureCreated();
        S.Policy = policy.Validated();
        SelectEvictions();
        await WriteOrReloadAsync();
        AfterDurableChange();
        return View();
    }

    public Task<long> StartAttempt() => Exclusive(StartAttemptCore);

    private async Task<long> StartAttemptCore()
    {
        EnsureCreated();
        S.Epoch++;
        // Checkpoints begun by earlier attempts can never complete now: collect them.
        foreach (var stale in S.Pending.Values.Where(p => p.Epoch < S.Epoch).ToList()) Abort(stale, AbortReason.Superseded, "superseded by a new attempt");
        await WriteOrReloadAsync();
        await CleanUpForNewAttemptAsync();
        logger.LogInformation("Run {Run} attempt {Epoch} started", _id, S.Epoch);
        return S.Epoch;
    }

    public Task<CheckpointAttempt> BeginCheckpoint(BeginCheckpointRequest request) => Exclusive(() => BeginCheckpointCore(request));

    private async Task<CheckpointAttempt> BeginCheckpointCore(BeginCheckpointRequest request)
    {
        EnsureCreated();
        CheckEpoch(request.Epoch);
        CheckpointName.Validate(request.Name);
        RequestBounds.RankInWorld(request.Rank, request.WorldSize);
        if (request.Tensors is not { Count: >= 0, TotalBytes: >= 0, Sha256.Length: 64 })
            throw new RunRefusedException($"Rank {request.Rank} sent an invalid tensor-list summary.");

        if (S.Pending.TryGetValue(request.Name, out var pending))
        {
            if (pending.Epoch == request.Epoch)
            {
                if (pending.WorldSize != request.WorldSize)
                    throw new RunRefusedException($"Checkpoint {request.Name} was begun with world size {pending.WorldSize}, not {request.WorldSize}.");
                if (pending.Tensors != request.Tensors)
                    throw new RunRefusedException($"Rank {request.Rank} began {request.Name} with {request.Tensors.Count} tensors ({request.Tensors.TotalBytes:N0} bytes), another rank with {pending.Tensors.Count} ({pending.Tensors.TotalBytes:N0} bytes): every rank must save the same tensor list.");
                pending.LastProgressUtc = time.GetUtcNow(); // in memory: a further rank beginning is progress too
                RecordBegin(pending, request.Rank);
                return AttemptFor(pending, request.Rank); // a retried or a further rank's Begin: same attempt, no write
            }
            Abort(pending, AbortReason.Superseded, "begun again by a newer attempt");
        }

        pending = new PendingCheckpoint
        {
            Name = request.Name,
            AttemptId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            Epoch = request.Epoch,
            WorldSize = request.WorldSize,
            Iteration = request.Iteration,
            StartedUtc = time.GetUtcNow(),
            LastProgressUtc = time.GetUtcNow(),
            Tensors = request.Tensors,
        };
        S.Pending[request.Name] = pending;
        await WriteOrReloadAsync();
        AfterDurableChange();
        // Stay active until the sweep could expire this checkpoint; the reminder covers a crash of this silo.
        DelayDeactivation(options.Value.PendingTimeout + options.Value.SweepPeriod * 2);
        RecordBegin(pending, request.Rank);
        return AttemptFor(pending, request.Rank);
    }

    private void RecordBegin(PendingCheckpoint pending, int rank)
    {
        if (!_begun.TryGetValue(pending.Name, out var begun) || begun.AttemptId != pending.AttemptId)
            _begun[pending.Name] = begun = (pending.AttemptId, new DateTimeOffset?[pending.WorldSize]);
        begun.Begun[rank] ??= time.GetUtcNow();
    }

    /// <summary>A committed save's history entry: each rank's Begin to report where this activation saw both.</summary>
    private HistoryEntry SaveHistory(CommitCollector collector, CheckpointRecord record)
    {
        var pending = collector.Pending;
        var begun = _begun.Remove(pending.Name, out var b) && b.AttemptId == pending.AttemptId ? b.Begun : new DateTimeOffset?[pending.WorldSize];
        var rankSeconds = Enumerable.Range(0, pending.WorldSize)
            .Select(rank => begun[rank] is { } start && collector.ReportedAt[rank] is { } reported ? (reported - start).TotalSeconds : (double?)null).ToList();
        return new HistoryEntry(HistoryEntry.Save, record.Name, record.CommittedUtc, record.Bytes, (time.GetUtcNow() - pending.StartedUtc).TotalSeconds,
            pending.Epoch, RankSeconds.Of(rankSeconds), collector.LongestStall);
    }

    public Task<IReadOnlyList<HistoryEntry>> GetHistory()
    {
        EnsureCreated();
        return Task.FromResult<IReadOnlyList<HistoryEntry>>(_history.Entries.ToList());
    }

    public Task RecordLoad(LoadReport load)
    {
        EnsureCreated();
        CheckpointName.Validate(load.Name);
        if (load.Rank < 0 || load.Seconds < 0 || load.Bytes < 0 || !double.IsFinite(load.Seconds)) throw new RunRefusedException("A load report needs a rank, seconds and bytes that are not negative.");
        var now = time.GetUtcNow();
        _history.Add(new HistoryEntry(HistoryEntry.Load, load.Name, now, load.Bytes, load.Seconds, load.Epoch, Rank: load.Rank), now);
        return Task.CompletedTask;
    }

    public async Task<ShardAck> ReportShard(ShardReport report, TimeSpan waitForCommit = default)
    {
        EnsureCreated();
        CheckEpoch(report.Epoch);
        if (CommittedRecord(report.Name, report.AttemptId) is { } committed) return new ShardAck(true, 0, committed); // a retry after the commit

        var collector = CollectorFor(report.Name, report.AttemptId)
            ?? throw new RunRefusedException($"No pending checkpoint {report.Name} attempt {report.AttemptId} in run {_id}: it expired, was aborted, or was never begun.");
        var pending = collector.Pending;
        RequestBounds.RankInWorld(report.Rank, pending.WorldSize);
        RequestBounds.ShardReport(report);
        collector.Add(report, CheckReport(pending, report), time.GetUtcNow());
        pending.LastProgressUtc = time.GetUtcNow();
        if (collector.Missing > 0)
        {
            return await WaitForCommitAsync(collector, waitForCommit) is { } committedMeanwhile
                ? new ShardAck(true, 0, committedMeanwhile)
                : new ShardAck(false, collector.Missing, null);
        }
        var record = await Exclusive(() => CommitAsync(collector));
        return new ShardAck(true, 0, record);
    }

    public async Task<CommitWait> AwaitCommit(CommitWaitRequest request)
    {
        EnsureCreated();
        CheckEpoch(request.Epoch);
        if (_collecting.TryGetValue(request.Name, out var collector) && collector.Pending.AttemptId == request.AttemptId)
        {
            if (request.Rank < 0 || request.Rank >= collector.Pending.WorldSize || !collector.Holds(request.Rank))
                return new CommitWait(CommitWaitStatus.ReportAgain, null, collector.Missing);
            return await WaitForCommitAsync(collector, request.MaxWait) is { } committed
                ? new CommitWait(CommitWaitStatus.Committed, committed, 0)
                : new CommitWait(CommitWaitStatus.Waiting, null, collector.Missing);
        }
        if (CommittedRecord(request.Name, request.AttemptId) is { } record) return new CommitWait(CommitWaitStatus.Committed, record, 0);
        if (S.Pending.TryGetValue(request.Name, out var pending) && pending.AttemptId == request.AttemptId)
            return new CommitWait(CommitWaitStatus.ReportAgain, null, pending.WorldSize);
        throw AbandonedRefusal(request.Name, request.AttemptId)
            ?? new RunRefusedException($"Checkpoint {request.Name} attempt {request.AttemptId} of {_id} was abandoned before every rank reported (see the run grain's log).");
    }

    /// <summary>Why this activation abandoned the attempt, when it did.</summary>
    private RunRefusedException? AbandonedRefusal(string name, string attemptId) =>
        _abandoned.TryGetValue(name, out var abandoned) && abandoned.AttemptId == attemptId ? abandoned.Refusal : null;

    /// <summary>The record once the collector's checkpoint commits within <paramref name="requested"/> (capped), null when it is still waiting; throws when it is abandoned.</summary>
    private async Task<CheckpointRecord?> WaitForCommitAsync(CommitCollector collector, TimeSpan requested)
    {
        var wait = requested < options.Value.MaxCommitWait ? requested : options.Value.MaxCommitWait;
        if (wait <= TimeSpan.Zero && !collector.Outcome.Task.IsCompleted) return null;
        try
        {
            return await collector.Outcome.Task.WaitAsync(wait, time);
        }
        catch (TimeoutException)
        {
            return null;
        }
    }

    /// <summary>The committed record of this attempt, once its commit is durable (the activation's collector is gone by then).</summary>
    private CheckpointRecord? CommittedRecord(string name, string attemptId) =>
        _collecting.ContainsKey(name) ? null : _catalog.Find(name) is { } record && record.AttemptId == attemptId ? record : null;

    private CommitCollector? CollectorFor(string name, string attemptId)
    {
        if (_collecting.TryGetValue(name, out var collector)) return collector.Pending.AttemptId == attemptId ? collector : null;
        if (!S.Pending.TryGetValue(name, out var pending) || pending.AttemptId != attemptId) return null;
        return _collecting[name] = new CommitCollector(pending);
    }

    /// <summary>Checks one report on its own and returns rank 0's state tree; the union of all reports is checked at commit (<see cref="CommitCollector.BuildManifest"/>).</summary>
    private static JsonObject? CheckReport(PendingCheckpoint pending, ShardReport report)
    {
        var shardName = StoreLayout.ShardName(report.Rank, pending.WorldSize, pending.AttemptId);
        if (report.Shard.Path != shardName)
            throw new RunRefusedException($"Rank {report.Rank} reported shard '{report.Shard.Path}', the plan says '{shardName}'.");
        var chunks = report.ChunkKeys.Count(report.Tensors.ContainsKey);
        if (report.Tensors.Count - chunks > pending.Tensors.Count)
            throw new RunRefusedException($"Rank {report.Rank}'s shard holds {report.Tensors.Count - chunks} whole tensors; the checkpoint has {pending.Tensors.Count}.");
        var reused = report.Reused ?? [];
        if (reused.Any(r => r.Checkpoint is not { } holder || !CheckpointName.IsValid(holder) || holder == pending.Name || !StoreLayout.IsShard(r.Path)))
            throw new RunRefusedException($"Rank {report.Rank} reuses a shard that is not one of another checkpoint of the run.");
        if (report.Tensors.Values.Any(t => (t.Shard != report.Rank && (t.Shard < pending.WorldSize || t.Shard >= pending.WorldSize + reused.Count))
            || t.DataOffsets is not [>= 0, var end] || end < t.DataOffsets[0]))
            throw new RunRefusedException($"Rank {report.Rank}'s tensor index must point at shard {report.Rank} (or at a shard it reuses) with valid offsets.");
        if (report.Rank != 0) return null;
        try
        {
            return JsonNode.Parse(report.StateJson ?? throw new RunRefusedException("Rank 0 must report the non-tensor state.")) as JsonObject
                ?? throw new RunRefusedException("Rank 0's state is not a JSON object.");
        }
        catch (JsonException e)
        {
            throw new RunRefusedException($"Rank 0's state is not valid JSON: {e.Message}");
        }
    }

    private async Task<CheckpointRecord> CommitAsync(CommitCollector collector)
    {
        var pending = collector.Pending;
        // Between the last report and here an exclusive change (a new attempt, the sweep) may have abandoned it.
        if (_collecting.GetValueOrDefault(pending.Name) != collector) return await collector.Outcome.Task;
        var prefix = $"{_id.StorePrefix}/{pending.Name}";
        try
        {
            var (manifest, manifestBytes) = BuildManifest(collector, prefix);
            if (options.Value.ChecksStoredSizes) await ThrowIfStoredSizesDifferAsync(manifest, prefix);
            // What the tenant is charged is what the store holds: the shards (checked just now) and the manifest with the non-tensor state.
            var storedBytes = manifest.WrittenBytes + manifestBytes.Length;

            var replaced = _catalog.Find(pending.Name);
            await EnsureGrantAsync(RetainedBytes - (replaced?.Bytes ?? 0) + storedBytes);
            await _deletions.WaitForAsync(prefix); // an owed deletion of an earlier checkpoint of this name must not take the new manifest

            var reuses = manifest.Shards.Where(sh => sh.Checkpoint is not null).Select(sh => $"{sh.Checkpoint}/{sh.Path}").ToList();
            ThrowIfNotStored(pending.Name, reuses);
            await Store.WriteBytesAsync(StoreLayout.ManifestKey(prefix), manifestBytes);
            // Checked again after the awaits: an eviction meanwhile may have released a shard this checkpoint reuses.
            ThrowIfNotStored(pending.Name, reuses);
            var record = new CheckpointRecord(pending.Name, pending.Iteration, storedBytes, pending.WorldSize, manifest.CreatedUtc,
                StoreLayout.ManifestKey(prefix), pending.AttemptId, pending.Epoch, reuses.Count > 0 ? reuses : null);
            S.Pending.Remove(pending.Name);
            if (replaced is not null)
            {
                _catalog.Remove(replaced);
                Release(replaced, includesManifest: false);
            }
            _catalog.Insert(record);
            var tagged = S.LastCheckpoint is { } last ? _catalog.Find(last) : null;
            if (tagged is null || (record.Iteration ?? long.MaxValue) >= (tagged.Iteration ?? long.MinValue)) S.LastCheckpoint = record.Name;
            if (S.CheckpointRequest is { } request && request.RequestedUtc <= pending.StartedUtc) S.CheckpointRequest = null;
            SelectEvictions();
            ReleaseUnreferencedHeld();
            await WriteOrReloadAsync();
            logger.LogDebug("Run {Run} committed {Name} ({Bytes} bytes, {World} ranks); last = {Last}", _id, record.Name, record.Bytes, record.WorldSize, S.LastCheckpoint);
            _collecting.Remove(pending.Name);
            metrics.Commits.Add(1, SiloMetrics.Tenant(_id.Tenant));
            metrics.CommitDuration.Record((time.GetUtcNow() - pending.StartedUtc).TotalSeconds, SiloMetrics.Tenant(_id.Tenant));
            collector.Outcome.TrySetResult(record);
            _history.Add(SaveHistory(collector, record), time.GetUtcNow());
            AfterDurableChange();
            return record;
        }
        catch (RunRefusedException e)
        {
            // The checkpoint can never commit as reported (over the tenant's limit, shards that do not match the plan): abandon it.
            await AbandonAsync(collector, e);
            throw;
        }
        catch (Exception e)
        {
            // A storage fault the store's own retries did not overcome (the manifest, or the state write): the
            // pending checkpoint stays durable, so every rank reports again and the commit is tried again
            // (by a fresh activation when the state write failed); RankCommitter's deadline bounds the retries.
            _collecting.Remove(pending.Name);
            var moved = e as RunMovedException ?? new RunMovedException($"Committing {pending.Name} of {_id} failed ({e.GetType().Name}: {e.Message}); report again.");
            if (e is not RunMovedException) logger.LogWarning(e, "Run {Run}: committing {Name} failed; the ranks report again", _id, pending.Name);
            collector.Outcome.TrySetException(moved);
            throw moved;
        }
        finally
        {
            _committingTo = 0; // landed (then retained counts it) or not at all
        }
    }

    /// <summary>
    /// The manifest the reports make, refused when a reader would refuse it. Pure computation on what the ranks sent: any
    /// failure is final (a refusal), never a fault that reporting again could cure.
    /// </summary>
    private (CheckpointManifest Manifest, byte[] Bytes) BuildManifest(CommitCollector collector, string prefix)
    {
        try
        {
            var manifest = collector.BuildManifest(_id.Key, time.GetUtcNow());
            var bytes = ManifestJson.Serialize(manifest);
            ManifestJson.Parse(bytes, StoreLayout.ManifestKey(prefix));
            return (manifest, bytes);
        }
        catch (Exception e) when (e is not RunRefusedException)
        {
            throw new RunRefusedException($"The ranks' reports of {collector.Pending.Name} do not make a readable checkpoint: {e.Message}");
        }
    }

    /// <summary>
    /// Quotas count what the store holds, not what ranks declare: each shard this checkpoint wrote must be in the store with
    /// the length its rank reported, or the commit is refused (a rank that declared 40 bytes for a 4 MB shard would have
    /// been charged 40). A storage fault here is not a refusal: the ranks report again.
    /// </summary>
    private async Task ThrowIfStoredSizesDifferAsync(CheckpointManifest manifest, string prefix)
    {
        foreach (var shards in manifest.Shards.Where(shard => shard.Checkpoint is null).Chunk(StoreRequestsInFlight))
        {
            var entries = await Task.WhenAll(shards.Select(shard => Store.GetEntryAsync(StoreLayout.ShardKey(prefix, shard))));
            foreach (var (shard, entry) in shards.Zip(entries))
            {
                if (entry?.Length != shard.Bytes)
                    throw new RunRefusedException(entry is null
                        ? $"Shard {shard.Path} of {manifest.Name} was reported but is not in the store."
                        : $"Shard {shard.Path} of {manifest.Name} was reported as {shard.Bytes:N0} bytes; the store holds {entry.Length:N0}.");
            }
        }
    }

    /// <summary>Every waiting rank fails with the same refusal as the rank whose report completed the set.</summary>
    private async Task AbandonAsync(CommitCollector collector, RunRefusedException refusal)
    {
        Abort(collector.Pending, AbortReason.Refused, refusal.Message, refusal);
        await WriteOrReloadAsync();
        AfterDurableChange();
    }

    /// <summary>
    /// After a failed write the activation's state is ahead of what is durable: deactivate, so the
    /// next call reloads what is durable (ranks report again; owed deletions are recorded again).
    /// </summary>
    private async Task WriteOrReloadAsync()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception e)
        {
            // Often the write landed and only its answer was lost (a retry then meets its own ETag): the
            // reloaded state says which. Callers retry against the new activation (RunMovedException is transient).
            _reloading = true;
            DeactivateOnIdle();
            logger.LogWarning(e, "Run {Run}: saving its state failed; the grain reloads what is durable", _id);
            throw new RunMovedException($"Run {_id} could not save its state ({e.GetType().Name}: {e.Message}); it reloads: try again.");
        }
    }

    /// <summary>
    /// Makes sure the tenant counts this run at <paramref name="retainedBytes"/> (what it retains once the commit in flight
    /// lands): under the grant it holds, asking the tenant only when that is short or its lease ended. Until the commit ends,
    /// a revocation reports that amount (<see cref="RevokeGrant"/>).
    /// </summary>
    private async Task EnsureGrantAsync(long retainedBytes)
    {
        _committingTo = retainedBytes;
        var now = time.GetUtcNow();
        if (_grant is { } grant && grant.Covers(retainedBytes, now)) return;
        _grant = null;
        var revocations = _revocations;
        var granted = await _accounting.Reserve(TenantAccounting, _id.Run, retainedBytes);
        // Revoked while the Reserve was under way: the tenant dropped this grant too, and counts this commit by the revocation's report.
        if (revocations == _revocations) _grant = new TenantGrant(granted.UpTo, now + granted.Lease);
    }

    /// <summary>
    /// The tenant drops every grant once its runs answer this and counts each run by its last report, so the report
    /// must be current rather than up to <see cref="RunGrainOptions.TenantReportDelay"/> old; it goes through the
    /// channel, after any report sent before it.
    /// </summary>
    public async Task RevokeGrant()
    {
        _grant = null;
        _revocations++;
        CancelTenantReport();
        // The report gives the grant back at the tenant in order with this run's other accounting calls (a Reserve sent after it
        // grants anew), and counts a commit that already passed its check at what the run will retain once it lands.
        await _accounting.Report(TenantAccounting, _id.Run, Math.Max(RetainedBytes, _committingTo), release: true);
    }

    private long RetainedBytes => _catalog.Bytes + S.Held.Sum(h => h.Bytes);

    /// <summary>"holder/path" of every shard that a retained incremental checkpoint reuses.</summary>
    private HashSet<string> ReusedShards() => _catalog.Entries.SelectMany(c => c.Reuses ?? []).ToHashSet(StringComparer.Ordinal);

    /// <summary>
    /// Refuses a commit that reuses a shard which is not stored any more: one of a retained checkpoint's own
    /// attempt, or one still held for other incremental checkpoints. (The rank read an older manifest.)
    /// </summary>
    private void ThrowIfNotStored(string name, IReadOnlyList<string> reuses)
    {
        foreach (var reuse in reuses)
        {
            var slash = reuse.IndexOf('/');
            var (holder, path) = (reuse[..slash], reuse[(slash + 1)..]);
            var stored = _catalog.Find(holder) is { } c && StoreLayout.AttemptOf(path) == c.AttemptId
                || S.Held.Any(h => h.Name == holder && h.Paths.Contains(path));
            if (!stored) throw new RunRefusedException($"Checkpoint {name} of {_id} reuses shard {path} of checkpoint {holder}, which is no longer stored; save it again.");
        }
    }

    /// <summary>
    /// A checkpoint leaves the catalog (evicted, or replaced by a new save of its name): its files are owed a
    /// deletion, except the shards retained incremental checkpoints reuse, which are held until nothing does.
    /// </summary>
    private void Release(CheckpointRecord gone, bool includesManifest)
    {
        var prefix = $"{_id.StorePrefix}/{gone.Name}";
        var reused = ReusedShards();
        var shards = Enumerable.Range(0, gone.WorldSize).Select(rank => StoreLayout.ShardName(rank, gone.WorldSize, gone.AttemptId)).ToList();
        var held = shards.Where(path => reused.Contains($"{gone.Name}/{path}")).ToList();
        if (held.Count == 0)
        {
            S.Deletions.Add(new PendingDeletion(prefix, gone.AttemptId, gone.WorldSize, includesManifest));
            return;
        }
        var now = shards.Except(held).Select(path => $"{prefix}/{path}");
        if (includesManifest) now = now.Prepend(StoreLayout.ManifestKey(prefix));
        S.Deletions.Add(new PendingDeletion(prefix, gone.AttemptId, gone.WorldSize, Keys: now.ToList()));
        S.Held.Add(new HeldShards(gone.Name, gone.AttemptId, gone.Bytes, held));
    }

    /// <summary>Held shards that no retained checkpoint reuses any more are owed a deletion; a fully released hold goes.</summary>
    private void ReleaseUnreferencedHeld()
    {
        if (S.Held.Count == 0) return;
        var reused = ReusedShards();
        foreach (var hold in S.Held.ToList())
        {
            var freed = hold.Paths.Where(path => !reused.Contains($"{hold.Name}/{path}")).ToList();
            if (freed.Count == 0) continue;
            var prefix = $"{_id.StorePrefix}/{hold.Name}";
            S.Deletions.Add(new PendingDeletion(prefix, hold.AttemptId, Keys: freed.Select(path => $"{prefix}/{path}").ToList()));
            S.Held.Remove(hold);
            if (freed.Count < hold.Paths.Count) S.Held.Add(hold with { Paths = hold.Paths.Except(freed).ToList() });
        }
    }

    /// <summary>max_to_keep over periodic checkpoints ("{prefix}_NNNNNNN"), newest kept; never "_final", never the tagged one.</summary>
    private void SelectEvictions()
    {
        if (S.Policy.MaxToKeep is not { } keep) return;
        var candidates = _catalog.Entries.Where(c => S.Policy.IsPeriodicName(c.Name)).ToList();
        foreach (var evicted in candidates.Take(Math.Max(0, candidates.Count - keep)).Where(c => c.Name != S.LastCheckpoint))
        {
            _catalog.Remove(evicted);
            Release(evicted, includesManifest: true);
            logger.LogDebug("Run {Run} evicts {Name} (max_to_keep={Keep})", _id, evicted.Name, keep);
        }
    }

    /// <summary>Off the acknowledgement path: owed deletions, the tenant's view of retained bytes, the sweep reminder, archiving older catalog entries.</summary>
    private void AfterDurableChange()
    {
        _deletions.Start(S.Deletions, RunDeletionAsync, logger, _id);
        if (_accounting.ReportDue(RetainedBytes)) _tenantReport ??= this.RegisterGrainTimer(ReportToTenantAsync,
            new GrainTimerCreationOptions(options.Value.TenantReportDelay, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = false });
        if (!_reminderRegistered && (S.Pending.Count > 0 || S.Deletions.Count > 0)) _ = RegisterSweepReminderAsync();
        if (_catalog.SealDue && _sealing is not { IsCompleted: false }) _sealing = SealCatalogAsync();
    }

    private Task ReportToTenantAsync(CancellationToken cancellationToken)
    {
        CancelTenantReport();
        _accounting.ReportSoon(TenantAccounting, _id.Run, () => RetainedBytes, logger);
        return Task.CompletedTask;
    }

    /// <summary>Disarms the delayed report to the tenant; true when one was due.</summary>
    private bool CancelTenantReport()
    {
        if (_tenantReport is not { } timer) return false;
        timer.Dispose();
        _tenantReport = null;
        return true;
    }

    /// <summary>Moves older catalog entries out of the state every commit writes; a failure is logged and the grain reloads what is durable.</summary>
    private async Task SealCatalogAsync()
    {
        try
        {
            await Exclusive(async () =>
            {
                if (!S.Created || !_catalog.SealDue) return true;
                await _catalog.SealAsync(WriteOrReloadAsync);
                logger.LogDebug("Run {Run}: archived older catalog entries ({Count} in the catalog)", _id, _catalog.Entries.Count);
                return true;
            });
        }
        catch (Exception e)
        {
            _reloading = true; // an archive write that failed may still have landed: reload both parts
            DeactivateOnIdle();
            logger.LogWarning(e, "Run {Run}: archiving older catalog entries failed; the grain reloads what is durable", _id);
        }
    }

    public Task<CheckpointRecord?> GetLastCheckpoint()
    {
        EnsureCreated();
        return Task.FromResult(S.LastCheckpoint is { } last ? _catalog.Find(last) : null);
    }

    public Task<IReadOnlyList<CheckpointRecord>> ListCheckpoints()
    {
        EnsureCreated();
        return Task.FromResult<IReadOnlyList<CheckpointRecord>>(_catalog.Entries.ToList());
    }

    public Task TagLastCheckpoint(string name) => Exclusive(async () =>
    {
        EnsureCreated();
        if (_catalog.Find(name) is null) throw new RunRefusedException($"Run {_id} has no committed checkpoint {name}.");
        S.LastCheckpoint = name;
        await WriteOrReloadAsync();
        return true;
    });

    public Task RequestCheckpointNow(string reason) => Exclusive(async () =>
    {
        RequestBounds.Reason(reason);
        EnsureCreated();
        S.CheckpointRequest = new CheckpointRequest(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), reason, time.GetUtcNow());
        await WriteOrReloadAsync();
        logger.LogInformation("Run {Run}: checkpoint requested ({Reason})", _id, reason);
        return true;
    });

    public Task<StepDirective> GetDirective(long epoch, long iteration)
    {
        EnsureCreated();
        CheckEpoch(epoch);
        if (S.CheckpointRequest is not { SaveAtIteration: null }) return Task.FromResult(new StepDirective(S.CheckpointRequest, S.Policy)); // every step of every rank: no lock
        return Exclusive(async () =>
        {
            CheckEpoch(epoch);
            if (S.CheckpointRequest is { SaveAtIteration: null } request)
            {
                // Ranks of a data-parallel job are at most a step apart: two steps of margin let all of them see it in time.
                S.CheckpointRequest = request with { SaveAtIteration = iteration + 2 };
                await WriteOrReloadAsync();
            }
            return new StepDirective(S.CheckpointRequest, S.Policy);
        });
    }

    public Task Delete() => Exclusive(async () =>
    {
        EnsureCreated();
        await _deletions.WaitForAsync(null);
        var deleted = 0;
        foreach (var name in await CheckpointFoldersAsync()) deleted += await CheckpointFiles.DeleteCheckpointAsync(Store, $"{_id.StorePrefix}/{name}");
        _grant = null;
        CancelTenantReport();
        await TenantAccounting.UnregisterRun(_id.Run);
        try
        {
            await _catalog.ClearArchiveAsync(); // first: a run created again under this name must not find the old archive
            await state.ClearStateAsync();
        }
        catch
        {
            _reloading = true;
            DeactivateOnIdle();
            throw;
        }
        state.State = new RunState();
        _catalog.Restore();
        await _history.ClearAsync();
        if (_reminderRegistered) await UnregisterSweepReminderAsync();
        logger.LogInformation("Run {Run} deleted ({Objects} objects)", _id, deleted);
        DeactivateOnIdle();
        return true;
    });

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != SweepReminder) return;
        _reminderRegistered = true;
        await SweepAsync(CancellationToken.None);
        if (!S.Created || (S.Pending.Count == 0 && S.Deletions.Count == 0)) await UnregisterSweepReminderAsync();
    }

    /// <summary>
    /// The reminder outlives this activation and its silo: a run whose silo crashed with a checkpoint
    /// pending is activated elsewhere and swept without anyone calling it.
    /// </summary>
    private async Task RegisterSweepReminderAsync()
    {
        _reminderRegistered = true;
        try
        {
            var period = options.Value.ReminderPeriod;
            await this.RegisterOrUpdateReminder(SweepReminder, period, period);
        }
        catch (Exception e)
        {
            _reminderRegistered = false;
            logger.LogWarning(e, "Run {Run}: registering the sweep reminder failed; the next change tries again", _id);
        }
    }

    private async Task UnregisterSweepReminderAsync()
    {
        try
        {
            if (await this.GetReminder(SweepReminder) is { } reminder) await this.UnregisterReminder(reminder);
            _reminderRegistered = false;
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: unregistering the idle sweep reminder failed; it fires again and retries", _id);
        }
    }

    /// <summary>Collects checkpoints abandoned mid-save, gives back an expired grant and retries owed deletions.</summary>
    private Task SweepAsync(CancellationToken cancellationToken) => Exclusive(async () =>
    {
        if (!S.Created) return true;
        var now = time.GetUtcNow();
        var cutoff = now - options.Value.PendingTimeout;
        var expired = S.Pending.Values.Where(p => p.LastProgressUtc < cutoff).ToList();
        foreach (var p in expired) Abort(p, AbortReason.Expired, $"no progress for {options.Value.PendingTimeout}");
        if (expired.Count > 0) await WriteOrReloadAsync();
        if (_grant is { } grant && grant.ExpiresUtc <= now)
        {
            _grant = null;
            _accounting.ReleaseSoon(TenantAccounting, _id.Run, () => RetainedBytes, logger);
        }
        await _history.FlushIfDueAsync(now, options.Value.SweepPeriod * HistoryDelayInSweeps);
        AfterDurableChange();
        return true;
    });

    /// <summary>Ranks waiting for it, or awaiting it later in this activation, fail with <paramref name="refusal"/> (or the reason); its shards are owed a deletion.</summary>
    private void Abort(PendingCheckpoint pending, string reason, string why, RunRefusedException? refusal = null)
    {
        refusal ??= new RunRefusedException($"Checkpoint {pending.Name} of {_id} was abandoned: {why}.");
        if (_collecting.Remove(pending.Name, out var collector)) collector.Outcome.TrySetException(refusal);
        _begun.Remove(pending.Name);
        // A rank that reported and asks for the outcome only after this (between two waits) gets the same reason.
        if (_abandoned.Count >= MaxRememberedAbandoned) _abandoned.Clear();
        _abandoned[pending.Name] = (pending.AttemptId, refusal);
        S.Pending.Remove(pending.Name);
        S.Deletions.Add(new PendingDeletion($"{_id.StorePrefix}/{pending.Name}", pending.AttemptId, pending.WorldSize));
        metrics.Aborts.Add(1, SiloMetrics.Tenant(_id.Tenant), new KeyValuePair<string, object?>("reason", reason));
        logger.LogWarning("Run {Run}: checkpoint {Name} attempt {Attempt} abandoned: {Why}", _id, pending.Name, pending.AttemptId, why);
    }

    /// <summary>
    /// Deletes what one owed deletion names, never a live checkpoint's files: the manifest only while
    /// no committed or pending checkpoint has the name, shards only of attempts that are not live.
    /// Called by <see cref="BackgroundDeletions"/> on the grain's scheduler.
    /// </summary>
    private async Task RunDeletionAsync(PendingDeletion deletion)
    {
        await DeleteOwedAsync(deletion);
        metrics.Deletions.Add(1, SiloMetrics.Tenant(_id.Tenant));
    }

    /// <summary>Store requests a grain has in flight at once for one batch of work (deletions, size checks).</summary>
    private const int StoreRequestsInFlight = 32;

    private async Task DeleteOwedAsync(PendingDeletion deletion)
    {
        var name = deletion.CheckpointPrefix[(deletion.CheckpointPrefix.LastIndexOf('/') + 1)..];
        var live = _catalog.Find(name);
        var livePending = S.Pending.GetValueOrDefault(name);
        if (deletion.Keys is { } keys)
        {
            await RunKeyedDeletionAsync(deletion.CheckpointPrefix, name, keys, live, livePending);
            return;
        }
        if (deletion.WorldSize is not { } worldSize)
        {
            await RunListedDeletionAsync(deletion, live, livePending);
            return;
        }
        if (deletion.AttemptId == live?.AttemptId || deletion.AttemptId == livePending?.AttemptId) return;
        if (deletion.IncludesManifest && live is null && livePending is null)
            await Store.DeleteAsync(StoreLayout.ManifestKey(deletion.CheckpointPrefix)); // first: the checkpoint is gone before its shards go
        // A few at a time: a state saved before world sizes were bounded may name a million ranks.
        foreach (var ranks in Enumerable.Range(0, worldSize).Chunk(StoreRequestsInFlight))
        {
            await Task.WhenAll(ranks.Select(rank => Store.DeleteAsync($"{deletion.CheckpointPrefix}/{StoreLayout.ShardName(rank, worldSize, deletion.AttemptId!)}")));
        }
    }

    /// <summary>Exactly the keys of a deletion that released part of a checkpoint, each only if nothing live needs it now.</summary>
    private async Task RunKeyedDeletionAsync(string prefix, string name, IReadOnlyList<string> keys, CheckpointRecord? live, PendingCheckpoint? livePending)
    {
        var reused = ReusedShards();
        foreach (var key in keys)
        {
            if (StoreLayout.FileIn(prefix, key) is not { } file) continue;
            if (file == ManifestJson.FileName)
            {
                if (live is null && livePending is null) await Store.DeleteAsync(key);
                continue;
            }
            var attempt = StoreLayout.AttemptOf(file);
            if (attempt is null || attempt == live?.AttemptId || attempt == livePending?.AttemptId) continue;
            if (reused.Contains($"{name}/{file}") || S.Held.Any(h => h.Name == name && h.Paths.Contains(file))) continue;
            await Store.DeleteAsync(key);
        }
    }

    /// <summary>Deletions recorded by the first release name no world size: list the folder.</summary>
    private async Task RunListedDeletionAsync(PendingDeletion deletion, CheckpointRecord? live, PendingCheckpoint? livePending)
    {
        await foreach (var entry in Store.ListAsync(deletion.CheckpointPrefix + "/"))
        {
            if (StoreLayout.FileIn(deletion.CheckpointPrefix, entry.Key) is not { } file || !StoreLayout.IsOurs(file)) continue;
            var fileAttempt = StoreLayout.AttemptOf(file);
            if (deletion.AttemptId is { } attempt && fileAttempt != attempt) continue;
            if (live is not null && (file == ManifestJson.FileName || fileAttempt == live.AttemptId)) continue;
            if (livePending is not null && (file == ManifestJson.FileName || fileAttempt == livePending.AttemptId)) continue;
            await Store.DeleteAsync(entry.Key);
        }
    }

    /// <summary>
    /// Finishes owed deletions, then deletes the shards killed ranks left under the run prefix: those of
    /// attempts that are neither committed nor pending (they can never be reported now) and that their
    /// folder's manifest does not reference. Manifests are never deleted here: one the catalog does not
    /// know (lost grain state, a commit that crashed before its state was saved) is a checkpoint someone
    /// may load, so it is kept and logged. Best effort: the new epoch is already saved, so a storage
    /// error is logged rather than failing the attempt; the sweep and the next attempt try again.
    /// </summary>
    private async Task CleanUpForNewAttemptAsync()
    {
        try
        {
            _deletions.Start(S.Deletions, RunDeletionAsync, logger, _id);
            await _deletions.WaitForAsync(null);
            var collected = 0;
            foreach (var name in await CheckpointFoldersAsync()) collected += await CollectOrphansAsync(name);
            if (collected > 0) logger.LogInformation("Run {Run}: collected {Count} orphan shard(s) of interrupted saves", _id, collected);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: cleaning up after earlier attempts failed; it is retried later", _id);
        }
    }

    private async Task<int> CollectOrphansAsync(string name)
    {
        var folder = $"{_id.StorePrefix}/{name}";
        var committed = _catalog.Find(name);
        if (committed is null && await Store.GetEntryAsync(StoreLayout.ManifestKey(folder)) is not null)
            logger.LogWarning("Run {Run}: {Folder} holds a manifest the catalog does not know (lost grain state or an interrupted commit); it and its shards are kept", _id, folder);
        string[] live = [.. new[] { committed?.AttemptId, S.Pending.GetValueOrDefault(name)?.AttemptId }.OfType<string>(),
            .. S.Held.Where(h => h.Name == name).Select(h => h.AttemptId)];
        // Blob timestamps need no minimum age: every rank of an earlier attempt is fenced off by the new epoch.
        return await CheckpointFiles.DeleteOrphanShardsAsync(Store, folder, TimeSpan.Zero, live);
    }

    /// <summary>Names of the checkpoint folders under the run prefix, committed or not.</summary>
    private async Task<SortedSet<string>> CheckpointFoldersAsync()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var prefix = _id.StorePrefix + "/";
        await foreach (var entry in Store.ListAsync(prefix))
        {
            var slash = entry.Key.IndexOf('/', prefix.Length);
            if (slash > prefix.Length) names.Add(entry.Key[prefix.Length..slash]);
        }
        return names;
    }

    /// <summary>Runs <paramref name="change"/> alone among the grain's changes to durable state.</summary>
    private async Task<T> Exclusive<T>(Func<Task<T>> change)
    {
        await _exclusive.WaitAsync();
        try
        {
            if (_reloading) throw new RunMovedException($"Run {_id} is reloading its state after a failed write; try again.");
            return await change();
        }
        finally { _exclusive.Release(); }
    }

    private CheckpointAttempt AttemptFor(PendingCheckpoint pending, int rank) => new(
        pending.Name, pending.AttemptId, rank, pending.WorldSize,
        $"{_id.StorePrefix}/{pending.Name}",
        StoreLayout.ShardName(rank, pending.WorldSize, pending.AttemptId));

    private void CheckEpoch(long epoch)
    {
        if (epoch < S.Epoch) throw new StaleAttemptException($"Run {_id} is at attempt {S.Epoch}; a call from attempt {epoch} is stale (the job was restarted).");
        if (epoch > S.Epoch) throw new StaleAttemptException($"Run {_id} has no attempt {epoch} (current {S.Epoch}); call StartAttempt first.");
    }

    private void EnsureCreated()
    {
        if (!S.Created) throw new RunNotFoundException($"Run {_id} does not exist.");
    }

    private RunView View() => new(_id, S.Policy, S.Epoch, S.LastCheckpoint, _catalog.Entries.ToList(),
        S.Pending.Values.Select(p => new PendingView(p.Name, p.Epoch, p.WorldSize, _collecting.GetValueOrDefault(p.Name)?.Received ?? 0, p.StartedUtc)).ToList(),
        S.CheckpointRequest, S.CreatedUtc, RuntimeIdentity, S.Held.Sum(h => h.Bytes));
}

/// <summary>Names of the grain storage providers the silo must register.</summary>
public static class GrainStorage
{
    public const string Runs = "runs";
    public const string Tenants = "tenants";
}
