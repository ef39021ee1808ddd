using System.Security.Cryptography;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// The commit protocol's rules for checkpoints between Begin and commit (docs/cluster.md). The durable part of a pending
/// checkpoint is in the run's state (<see cref="RunState.Pending"/>, O(1) in ranks and tensors); this activation's part
/// is here: the reports collected so far, when each rank began (for the history), and why recent attempts were
/// abandoned (a rank that asks after the fact gets the same answer). All of it is lost with the activation; ranks then
/// report again.
/// </summary>
internal sealed class PendingCheckpoints(RunId run)
{
    private const int MaxRememberedAbandoned = 64;
    private readonly Dictionary<string, CommitCollector> _collecting = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string AttemptId, DateTimeOffset?[] Begun)> _begun = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string AttemptId, RunRefusedException Refusal)> _abandoned = new(StringComparer.Ordinal);

    /// <summary>
    /// Step 1 of a save, Begin: the pending checkpoint rank <paramref name="request"/>.Rank joins. A retried or further
    /// rank's Begin joins the attempt already pending (no state write); otherwise a new attempt replaces an older one of
    /// the same name (<paramref name="superseded"/>, to be aborted first) and must be written, and its Begin recorded
    /// (<see cref="RecordBegin"/>), before it is answered.
    /// </summary>
    public PendingCheckpoint Begin(RunState state, BeginCheckpointRequest request, DateTimeOffset now, out bool isNew, out PendingCheckpoint? superseded)
    {
        CheckpointName.Validate(request.Name);
        RequestBounds.RankInWorld(request.Rank, request.WorldSize);
        if (request.Tensors is not { Count: >= 0, TotalBytes: >= 0, Sha256.Length: 64 })
            throw new RunRefusedException($"Rank {request.Rank} sent an invalid tensor-list summary.");
        superseded = null;
        if (state.Pending.TryGetValue(request.Name, out var pending))
        {
            if (pending.Epoch == request.Epoch)
            {
                if (pending.WorldSize != request.WorldSize)
                    throw new RunRefusedException($"Checkpoint {request.Name} was begun with world size {pending.WorldSize}, not {request.WorldSize}.");
                if (pending.Tensors != request.Tensors)
                    throw new RunRefusedException($"Rank {request.Rank} began {request.Name} with {request.Tensors.Count} tensors ({request.Tensors.TotalBytes:N0} bytes), another rank with {pending.Tensors.Count} ({pending.Tensors.TotalBytes:N0} bytes): every rank must save the same tensor list.");
                pending.LastProgressUtc = now; // in memory: a further rank beginning is progress too
                RecordBegin(pending, request.Rank, now);
                isNew = false;
                return pending;
            }
            superseded = pending;
        }
        isNew = true;
        pending = new PendingCheckpoint
        {
            Name = request.Name,
            AttemptId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            Epoch = request.Epoch,
            WorldSize = request.WorldSize,
            Iteration = request.Iteration,
            StartedUtc = now,
            LastProgressUtc = now,
            Tensors = request.Tensors,
        };
        return pending;
    }

    /// <summary>What rank <paramref name="rank"/> writes under: the attempt, its folder and its shard's name.</summary>
    public CheckpointAttempt AttemptFor(PendingCheckpoint pending, int rank) => new(
        pending.Name, pending.AttemptId, rank, pending.WorldSize,
        StoreLayout.CheckpointKey(run.StorePrefix, pending.Name),
        StoreLayout.ShardName(rank, pending.WorldSize, pending.AttemptId));

    /// <summary>When a rank began, as this activation saw it (for the history).</summary>
    public void RecordBegin(PendingCheckpoint pending, int rank, DateTimeOffset now)
    {
        if (!_begun.TryGetValue(pending.Name, out var begun) || begun.AttemptId != pending.AttemptId)
            _begun[pending.Name] = begun = (pending.AttemptId, new DateTimeOffset?[pending.WorldSize]);
        begun.Begun[rank] ??= now;
    }

    /// <summary>The collector of a pending attempt, created on its first report in this activation; null for an attempt that is not pending.</summary>
    public CommitCollector? CollectorFor(RunState state, string name, string attemptId)
    {
        if (_collecting.TryGetValue(name, out var collector)) return collector.Pending.AttemptId == attemptId ? collector : null;
        if (!state.Pending.TryGetValue(name, out var pending) || pending.AttemptId != attemptId) return null;
        return _collecting[name] = new CommitCollector(pending);
    }

    /// <summary>The collector of <paramref name="name"/> that holds reports in this activation, if any.</summary>
    public CommitCollector? Collecting(string name) => _collecting.GetValueOrDefault(name);

    /// <summary>Whether <paramref name="collector"/> is still the one collecting its checkpoint (not abandoned meanwhile).</summary>
    public bool IsCurrent(CommitCollector collector) => _collecting.GetValueOrDefault(collector.Pending.Name) == collector;

    /// <summary>The committed record of this attempt, once its commit is durable (the collector is gone by then).</summary>
    public CheckpointRecord? CommittedRecord(RunCatalog catalog, string name, string attemptId) =>
        _collecting.ContainsKey(name) ? null : catalog.Find(name) is { } record && record.AttemptId == attemptId ? record : null;

    /// <summary>Step 4, AwaitCommit: the record once the checkpoint commits within <paramref name="wait"/>, null while it is still waiting; throws when it is abandoned.</summary>
    public static async Task<CheckpointRecord?> WaitForCommitAsync(CommitCollector collector, TimeSpan wait, TimeProvider time)
    {
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

    /// <summary>The checkpoint committed: its waiting ranks get <paramref name="record"/>; returns its history entry.</summary>
    public HistoryEntry Committed(CommitCollector collector, CheckpointRecord record, DateTimeOffset now)
    {
        var pending = collector.Pending;
        _collecting.Remove(pending.Name);
        collector.Outcome.TrySetResult(record);
        var begun = _begun.Remove(pending.Name, out var b) && b.AttemptId == pending.AttemptId ? b.Begun : new DateTimeOffset?[pending.WorldSize];
        var rankSeconds = Enumerable.Range(0, pending.WorldSize)
            .Select(rank => begun[rank] is { } start && collector.ReportedAt[rank] is { } reported ? (reported - start).TotalSeconds : (double?)null).ToList();
        return new HistoryEntry(HistoryEntry.Save, record.Name, record.CommittedUtc, record.Bytes, (now - pending.StartedUtc).TotalSeconds,
            pending.Epoch, RankSeconds.Of(rankSeconds), collector.LongestStall);
    }

    /// <summary>The commit failed with a fault reporting again may cure: waiting ranks get <paramref name="moved"/> and report again.</summary>
    public void CommitFailed(CommitCollector collector, RunMovedException moved)
    {
        _collecting.Remove(collector.Pending.Name);
        collector.Outcome.TrySetException(moved);
    }

    /// <summary>The attempt is abandoned: ranks waiting for it, or asking later in this activation, fail with <paramref name="refusal"/>.</summary>
    public void Abandon(PendingCheckpoint pending, RunRefusedException refusal)
    {
        if (_collecting.Remove(pending.Name, out var collector)) collector.Outcome.TrySetException(refusal);
        _begun.Remove(pending.Name);
        if (_abandoned.Count >= MaxRememberedAbandoned) _abandoned.Clear();
        _abandoned[pending.Name] = (pending.AttemptId, refusal);
    }

    /// <summary>Why this activation abandoned the attempt, when it did.</summary>
    public RunRefusedException? AbandonedRefusal(string name, string attemptId) =>
        _abandoned.TryGetValue(name, out var abandoned) && abandoned.AttemptId == attemptId ? abandoned.Refusal : null;

    /// <summary>The activation ends: every collecting checkpoint's waiting ranks are told to report again.</summary>
    public void Deactivating()
    {
        foreach (var collector in _collecting.Values)
            collector.Outcome.TrySetException(new RunMovedException($"Run {run} moved while {collector.Pending.Name} was collecting reports; report again."));
    }

    /// <summary>The ranks of <paramref name="pending"/> whose report this activation does not hold, lowest first.</summary>
    public IReadOnlyList<int> ReportsMissing(PendingCheckpoint pending) =>
        _collecting.GetValueOrDefault(pending.Name) is { } collector
            ? Enumerable.Range(0, pending.WorldSize).Where(rank => !collector.Holds(rank)).ToList()
            : Enumerable.Range(0, pending.WorldSize).ToList();

}
