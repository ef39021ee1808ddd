using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// The run's memory tier as its grain applies it (docs/memory-tier.md): where each rank's snapshots go (its own holder,
/// then replicas on other hosts, in a ring), the memory commit (every rank's snapshot held on every holder it was placed
/// on, then one state write recording where the bytes live), and the attempt's resume decision (memory only when every
/// rank fetched and verified its snapshot; otherwise the durable tier, with the reason in the history). Announcements,
/// reports and agreements are kept in memory: a silo failure loses an incomplete set, which is then never used.
/// </summary>
internal sealed class MemoryTier(RunId run, IPersistentState<RunState> state, RunCatalog catalog, RunHistoryLog history, IRunShell shell,
    RunGrainOptions options, TimeProvider time, ILogger logger)
{
    private readonly Dictionary<int, HolderRef> _holders = [];
    private readonly Dictionary<long, MemoryCollector> _collecting = [];
    private readonly HashSet<int> _ranksFetched = [];
    /// <summary>Iterations of this attempt a rank gave up waiting for: their sets never commit, so no rank frees a snapshot the grain then records.</summary>
    private readonly HashSet<long> _abandoned = [];
    private TaskCompletionSource<ResumeDecision> _decided = NewDecision();
    /// <summary>Completed (and replaced) whenever a rank announces its holder: wakes the ranks waiting for the whole world.</summary>
    private TaskCompletionSource _announced = NewSignal();
    private RunState State => state.State;

    /// <summary>
    /// The newest memory checkpoint whose record is durable: what the run's view shows. <see cref="RunState.Memory"/> runs ahead
    /// of it while a state write is in flight, and falls back to it when that write fails and the grain reloads.
    /// </summary>
    public MemoryCheckpointRecord? Recorded { get; private set; } = state.State.Memory;

    /// <summary>A new attempt started: announcements and incomplete checkpoints of the old one can never complete now.</summary>
    public void NewAttempt()
    {
        _holders.Clear();
        foreach (var collector in _collecting.Values) collector.Outcome.TrySetResult(false);
        _collecting.Clear();
        _ranksFetched.Clear();
        _abandoned.Clear();
        _decided.TrySetResult(new ResumeDecision(false, false, "", "a new attempt started"));
        _decided = NewDecision();
        _announced.TrySetResult();
        _announced = NewSignal();
    }

    /// <summary>
    /// Records the rank's holder and answers its placement; until every rank of the world has announced one, waits up to
    /// <paramref name="waitForWorld"/> (capped) for the others, then answers null. Ranks start with skew (one may reach its
    /// first memory checkpoint before another has joined): waiting here absorbs it instead of dropping the checkpoint.
    /// </summary>
    public async Task<MemoryPlacement?> PlaceAsync(HolderAnnouncement announcement, TimeSpan waitForWorld)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(announcement.Epoch);
        CheckRank(announcement.Rank, announcement.WorldSize);
        if (!Uri.TryCreate(announcement.Holder.Endpoint, UriKind.Absolute, out var endpoint) || endpoint.Scheme is not ("http" or "https"))
            throw new RunRefusedException($"Holder endpoint '{announcement.Holder.Endpoint}' of rank {announcement.Rank} is not an http(s) URL.");
        _holders[announcement.Rank] = announcement.Holder;
        _announced.TrySetResult();
        _announced = NewSignal();
        var deadline = time.GetUtcNow() + options.CappedWait(waitForWorld);
        while (Enumerable.Range(0, announcement.WorldSize).Any(rank => !_holders.ContainsKey(rank)))
        {
            var remaining = deadline - time.GetUtcNow();
            if (remaining <= TimeSpan.Zero) return null;
            try { await _announced.Task.WaitAsync(remaining, time); }
            catch (TimeoutException) { return null; }
            shell.CheckEpoch(announcement.Epoch); // a new attempt started meanwhile: this rank's announcement is gone with it
        }
        return new MemoryPlacement(Ring(announcement.Rank, announcement.WorldSize));
    }

    /// <summary>The rank's own holder, then up to <see cref="RunGrainOptions.MemoryReplicas"/> others: the next ranks' on other hosts first, each endpoint once.</summary>
    private List<HolderRef> Ring(int rank, int worldSize)
    {
        var own = _holders[rank];
        var next = Enumerable.Range(1, worldSize - 1).Select(offset => _holders[(rank + offset) % worldSize]).Where(h => h.Endpoint != own.Endpoint).DistinctBy(h => h.Endpoint).ToList();
        var replicas = next.Where(h => h.Host != own.Host).Concat(next.Where(h => h.Host == own.Host)).Take(options.MemoryReplicas);
        return [own, .. replicas];
    }

    public async Task<MemoryCommitAck> ReportAsync(MemorySnapshotReport report, TimeSpan waitForCommit)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(report.Epoch);
        CheckRank(report.Rank, report.WorldSize);
        if (report.Name != PeriodicPolicy.MemoryName(report.Iteration))
            throw new RunRefusedException($"Memory checkpoint '{report.Name}' is not named {PeriodicPolicy.MemoryName(report.Iteration)} after its iteration.");
        if (report.Holders.Count == 0 || report.Bytes < 0) throw new RunRefusedException($"Memory snapshot report of rank {report.Rank} names no holder or a negative size.");
        // Read under the exclusive section: a commit whose state write is still in flight is not answered as committed yet.
        if (await shell.Exclusive(() => Task.FromResult(Settled(report.Epoch, report.Iteration))) is { } settled) return settled;
        if (!_collecting.TryGetValue(report.Iteration, out var collector))
        {
            collector = new MemoryCollector(report.Epoch, report.Iteration, report.WorldSize);
            _collecting[report.Iteration] = collector;
        }
        if (collector.WorldSize != report.WorldSize)
            throw new RunRefusedException($"Memory checkpoint {report.Name} is being taken by {collector.WorldSize} ranks; rank {report.Rank} reports a world of {report.WorldSize}.");
        collector.Add(report);
        if (collector.Missing == 0) return new MemoryCommitAck(await shell.Exclusive(() => CommitAsync(collector)), 0);
        try
        {
            return new MemoryCommitAck(await collector.Outcome.Task.WaitAsync(options.CappedWait(waitForCommit), time), 0);
        }
        catch (TimeoutException)
        {
            return new MemoryCommitAck(false, collector.Missing);
        }
    }

    /// <summary>
    /// A rank waited past its limit for the others: answers whether the checkpoint committed after all; if it did not, it never
    /// will (later reports of it are answered "not committed"), so the rank may free its snapshot.
    /// </summary>
    public Task<bool> AbandonAsync(long epoch, int rank, long iteration) => shell.Exclusive(() =>
    {
        shell.EnsureCreated();
        shell.CheckEpoch(epoch);
        if (State.Memory is { } committed && committed.Epoch == epoch && committed.Iteration == iteration) return Task.FromResult(true);
        _abandoned.Add(iteration);
        if (_collecting.Remove(iteration, out var collector)) collector.Outcome.TrySetResult(false);
        return Task.FromResult(false);
    });

    /// <summary>The answer to a report that needs no collecting: committed already, superseded by a newer one, or abandoned; null otherwise.</summary>
    private MemoryCommitAck? Settled(long epoch, long iteration)
    {
        if (State.Memory is { } committed && committed.Epoch == epoch && committed.Iteration >= iteration)
            return new MemoryCommitAck(committed.Iteration == iteration, 0); // a retry after the commit, or one a newer checkpoint superseded
        return _abandoned.Contains(iteration) ? new MemoryCommitAck(false, 0) : null;
    }

    /// <summary>Every rank's snapshot is held: one state write records where, unless a newer memory checkpoint of this attempt is recorded already.</summary>
    private async Task<bool> CommitAsync(MemoryCollector collector)
    {
        if (collector.Outcome.Task.IsCompleted) return await collector.Outcome.Task;
        _collecting.Remove(collector.Iteration);
        if (collector.Epoch != State.Epoch || _abandoned.Contains(collector.Iteration) || (State.Memory is { } current && current.Epoch == collector.Epoch && current.Iteration >= collector.Iteration))
        {
            collector.Outcome.TrySetResult(false);
            return false;
        }
        State.Memory = new MemoryCheckpointRecord(PeriodicPolicy.MemoryName(collector.Iteration), collector.Iteration, collector.Epoch, collector.WorldSize,
            time.GetUtcNow(), collector.Ranks());
        try
        {
            await shell.WriteOrReloadAsync();
        }
        catch (Exception e)
        {
            // The write may have landed: the waiting ranks report again, and the reloaded state answers them.
            collector.Outcome.TrySetException(e as RunMovedException ?? new RunMovedException($"Recording {PeriodicPolicy.MemoryName(collector.Iteration)} of {run} failed; report again."));
            throw;
        }
        Recorded = State.Memory;
        // Older incomplete sets of this attempt can never be the newest now.
        foreach (var older in _collecting.Values.Where(c => c.Iteration < collector.Iteration).ToList())
        {
            older.Outcome.TrySetResult(false);
            _collecting.Remove(older.Iteration);
        }
        collector.Outcome.TrySetResult(true);
        return true;
    }

    /// <summary>Under the exclusive section, so that a decision or commit whose state write is in flight is not planned from.</summary>
    public Task<ResumePlan> PlanAsync(ResumeRequest request) => shell.Exclusive(() => Task.FromResult(Plan(request)));

    private ResumePlan Plan(ResumeRequest request)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(request.Epoch);
        CheckRank(request.Rank, request.WorldSize);
        var durable = State.LastCheckpoint;
        if (State.Resume is { } decided && decided.Epoch == request.Epoch && !decided.Decision.UseMemory)
            return new ResumePlan(null, durable, decided.Decision.Reason);
        if (State.Memory is not { } memory) return new ResumePlan(null, durable, "the run has no memory checkpoint");
        if (memory.Unusable) return new ResumePlan(null, durable, $"{memory.Name} is unusable: a resume found a rank's snapshot on none of its holders");
        var durableIteration = durable is null ? null : catalog.Find(durable)?.Iteration;
        if (durableIteration >= memory.Iteration) return new ResumePlan(null, durable, $"{durable} is as new as {memory.Name}");
        if (memory.WorldSize != request.WorldSize)
            return new ResumePlan(null, durable, $"{memory.Name} was taken by {memory.WorldSize} ranks and this attempt has {request.WorldSize}: the memory tier does not reshard");
        var holders = memory.Ranks.First(r => r.Rank == request.Rank).Holders;
        var sources = holders.Where(h => h.Host == request.Host).Concat(holders.Where(h => h.Host != request.Host)).ToList();
        return new ResumePlan(new MemoryResumeSource(memory.Name, memory.Iteration, memory.Epoch, sources), durable,
            $"{memory.Name} (iteration {memory.Iteration}) is newer than {(durable is null ? "any durable checkpoint" : durable)}");
    }

    public async Task<ResumeDecision> AgreeAsync(ResumeOutcome outcome, TimeSpan maxWait)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(outcome.Epoch);
        CheckRank(outcome.Rank, outcome.WorldSize);
        var (made, memory) = await shell.Exclusive(() => Task.FromResult((State.Resume, State.Memory)));
        if (made is not null && made.Epoch == outcome.Epoch) return made.Decision;
        if (memory is null || memory.Name != outcome.Name || memory.Unusable || memory.WorldSize != outcome.WorldSize)
            return await DecideAsync(outcome.Epoch, new ResumeDecision(true, false, outcome.Name, $"{outcome.Name} is no longer the run's usable memory checkpoint"));
        if (!outcome.Fetched)
        {
            return await DecideAsync(outcome.Epoch, new ResumeDecision(true, false, outcome.Name,
                $"rank {outcome.Rank} could not fetch its snapshot of {outcome.Name}: {outcome.Problem ?? "no reason given"}"));
        }
        _ranksFetched.Add(outcome.Rank);
        if (_ranksFetched.Count == memory.WorldSize)
            return await DecideAsync(outcome.Epoch, new ResumeDecision(true, true, memory.Name, $"every rank fetched and verified its snapshot of {memory.Name}"));
        try
        {
            return await _decided.Task.WaitAsync(options.CappedWait(maxWait), time);
        }
        catch (TimeoutException)
        {
            return new ResumeDecision(false, false, memory.Name, $"waiting for {memory.WorldSize - _ranksFetched.Count} more ranks to fetch their snapshots");
        }
    }

    /// <summary>Makes the attempt's decision durable (once); a fallback also marks the memory checkpoint unusable and goes into the history.</summary>
    private Task<ResumeDecision> DecideAsync(long epoch, ResumeDecision decision) => shell.Exclusive(async () =>
    {
        if (State.Resume is { } made && made.Epoch == epoch) return made.Decision;
        shell.CheckEpoch(epoch);
        State.Resume = new ResumeDecisionRecord(epoch, decision);
        if (!decision.UseMemory && State.Memory is { } memory && memory.Name == decision.Name) State.Memory = memory with { Unusable = true };
        await shell.WriteOrReloadAsync();
        Recorded = State.Memory;
        if (!decision.UseMemory)
        {
            history.Add(new HistoryEntry(HistoryEntry.Fallback, decision.Name, time.GetUtcNow(), 0, 0, epoch, Detail: decision.Reason), time.GetUtcNow());
            logger.LogWarning("Run {Run} attempt {Epoch} resumes from the durable tier: {Reason}", run, epoch, decision.Reason);
        }
        _decided.TrySetResult(decision);
        return decision;
    });

    private static void CheckRank(int rank, int worldSize)
    {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) throw new RunRefusedException($"Rank {rank} is not in a world of {worldSize}.");
    }

    private static TaskCompletionSource<ResumeDecision> NewDecision() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
