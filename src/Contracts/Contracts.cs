namespace Checkpointing.Contracts;

/// <summary>A committed checkpoint of a run, as its catalog lists it.</summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointRecord(
    [property: Id(0)] string Name,
    [property: Id(1)] long? Iteration,
    [property: Id(2)] long Bytes,
    [property: Id(3)] int WorldSize,
    [property: Id(4)] DateTimeOffset CommittedUtc,
    [property: Id(5)] string ManifestKey,
    [property: Id(6)] string AttemptId,
    [property: Id(7)] long Epoch,
    [property: Id(8)] IReadOnlyList<string>? Reuses = null);

/// <summary>What a run grain reports about itself.</summary>
[GenerateSerializer, Immutable]
public sealed record RunView(
    [property: Id(0)] RunId Id,
    [property: Id(1)] PeriodicPolicy Policy,
    [property: Id(2)] long Epoch,
    [property: Id(3)] string? LastCheckpoint,
    [property: Id(4)] IReadOnlyList<CheckpointRecord> Catalog,
    [property: Id(5)] IReadOnlyList<PendingView> Pending,
    [property: Id(6)] CheckpointRequest? CheckpointRequest,
    [property: Id(7)] DateTimeOffset CreatedUtc,
    [property: Id(8)] string HostedBy,
    [property: Id(9)] long HeldBytes = 0)
{
    /// <summary>What the tenant's quota counts: the catalog's written bytes, and shards of evicted checkpoints that incremental ones still reuse (<see cref="HeldBytes"/>).</summary>
    public long RetainedBytes => Catalog.Sum(c => c.Bytes) + HeldBytes;
}

[GenerateSerializer, Immutable]
public sealed record PendingView(
    [property: Id(0)] string Name,
    [property: Id(1)] long Epoch,
    [property: Id(2)] int WorldSize,
    /// <summary>Ranks whose report this activation holds (reports live in memory; after a failover the ranks send them again).</summary>
    [property: Id(3)] int RanksReported,
    [property: Id(4)] DateTimeOffset StartedUtc);

/// <summary>A tensor a rank holds, by key and byte size, so the grain can split the work by bytes.</summary>
[GenerateSerializer, Immutable]
public sealed record TensorSize([property: Id(0)] string Key, [property: Id(1)] long Bytes);

/// <summary>
/// Phase one of a save: rank <see cref="Rank"/> of <see cref="WorldSize"/> asks to save
/// <see cref="Name"/> at <see cref="Iteration"/> under attempt <see cref="Epoch"/>. The rank sends
/// only a summary of its tensor list (every rank of a data-parallel job holds the same one): each
/// rank computes its own share with <see cref="SavePlan.For"/>, and the grain checks the union of
/// the reports against the summary at commit, so messages and grain state stay O(1) in tensors.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record BeginCheckpointRequest(
    [property: Id(0)] string Name,
    [property: Id(1)] long? Iteration,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] int Rank,
    [property: Id(4)] long Epoch,
    [property: Id(5)] TensorListSummary Tensors);

/// <summary>The grain's answer to Begin: the attempt every rank of this save writes under.</summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointAttempt(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] int WorldSize,
    [property: Id(4)] string CheckpointPrefix,
    [property: Id(5)] string ShardPath);

/// <summary>Which tensors this rank writes and where: the shard's key in the store. Computed by the rank itself.</summary>
public sealed record SavePlan(
    string Name,
    string AttemptId,
    int Rank,
    int WorldSize,
    string CheckpointPrefix,
    string ShardPath,
    IReadOnlyList<string> TensorKeys)
{
    public string ShardKey => $"{CheckpointPrefix}/{ShardPath}";

    /// <summary>This rank's share of <paramref name="tensors"/>: the split every rank and the grain compute alike (<see cref="ShardPlanner"/>).</summary>
    public static SavePlan For(CheckpointAttempt attempt, IReadOnlyList<TensorSize> tensors) => new(
        attempt.Name, attempt.AttemptId, attempt.Rank, attempt.WorldSize, attempt.CheckpointPrefix, attempt.ShardPath,
        ShardPlanner.Split(tensors, attempt.WorldSize, t => t.Key, t => t.Bytes)[attempt.Rank].Select(t => t.Key).ToList());
}

/// <summary>Phase two: a rank's shard is durable in the store with this length and checksum.</summary>
/// <param name="StateJson">The non-tensor state tree (manifest "state"), sent by rank 0 only.</param>
/// <param name="StallSeconds">How long this rank's training waited for the save, when the agent measured it (async saves: the snapshot copy).</param>
/// <param name="Reused">An incremental save's shards of earlier checkpoints (<see cref="ShardInfo.Checkpoint"/> set) whose
/// bytes tensors of <paramref name="Tensors"/> reference, as shard index <c>world size + i</c>; null or empty otherwise.</param>
/// <param name="Sharded">This rank's chunks of sharded tensors (DESIGN.md §11): per tensor its dtype, global shape and the
/// chunks this rank holds, whose bytes are entries of <paramref name="Tensors"/> outside the plan's share; null when none.</param>
[GenerateSerializer, Immutable]
public sealed record ShardReport(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] long Epoch,
    [property: Id(4)] ShardInfo Shard,
    [property: Id(5)] IReadOnlyDictionary<string, TensorInfo> Tensors,
    [property: Id(6)] string? StateJson,
    [property: Id(7)] IReadOnlyList<ShardInfo>? Reused = null,
    [property: Id(8)] double? StallSeconds = null,
    [property: Id(9)] IReadOnlyDictionary<string, ShardedTensorInfo>? Sharded = null)
{
    /// <summary>The keys of <see cref="Tensors"/> that hold chunks of sharded tensors rather than the plan's share.</summary>
    public IReadOnlySet<string> ChunkKeys => ShardedTensorInfo.ChunkKeys(Sharded?.Values ?? []);
}

/// <summary>The answer to a shard report: committed (every rank is in), or how many ranks are still missing.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardAck(
    [property: Id(0)] bool Committed,
    [property: Id(1)] int RanksMissing,
    [property: Id(2)] CheckpointRecord? Record);

/// <summary>A rank that reported waits (long-polls) for the commit of its attempt.</summary>
[GenerateSerializer, Immutable]
public sealed record CommitWaitRequest(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] long Epoch,
    [property: Id(4)] TimeSpan MaxWait);

[GenerateSerializer]
public enum CommitWaitStatus
{
    /// <summary>Every rank is in and the commit is durable.</summary>
    Committed,
    /// <summary>Still waiting for other ranks: ask again.</summary>
    Waiting,
    /// <summary>The grain does not hold this rank's report (it was reactivated, e.g. after a silo failure): send the same report again.</summary>
    ReportAgain,
}

[GenerateSerializer, Immutable]
public sealed record CommitWait(
    [property: Id(0)] CommitWaitStatus Status,
    [property: Id(1)] CheckpointRecord? Record,
    [property: Id(2)] int RanksMissing);

/// <summary>
/// An operator's or scheduler's request that the run checkpoint as soon as possible (e.g. preemption
/// notice). <see cref="SaveAtIteration"/> is fixed by the first agent that sees the request, so that
/// every rank saves at the same iteration.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointRequest(
    [property: Id(0)] string Id,
    [property: Id(1)] string Reason,
    [property: Id(2)] DateTimeOffset RequestedUtc,
    [property: Id(3)] long? SaveAtIteration = null);

/// <summary>What an agent should do at this step, beyond its periodic schedule.</summary>
[GenerateSerializer, Immutable]
public sealed record StepDirective(
    [property: Id(0)] CheckpointRequest? CheckpointNow,
    [property: Id(1)] PeriodicPolicy Policy);

/// <summary>A tenant's limits. Null means unlimited.</summary>
[GenerateSerializer, Immutable]
public sealed record TenantLimits(
    [property: Id(0)] int? MaxRuns,
    [property: Id(1)] long? MaxRetainedBytes);

[GenerateSerializer, Immutable]
public sealed record TenantView(
    [property: Id(0)] string Tenant,
    [property: Id(1)] TenantLimits Limits,
    [property: Id(2)] IReadOnlyDictionary<string, long> RetainedBytesByRun)
{
    public long RetainedBytes => RetainedBytesByRun.Values.Sum();
}

/// <summary>
/// Retained bytes a run may hold without asking its tenant again, until the lease ends (measured by
/// the run from before it asked). <see cref="UpTo"/> null: the tenant has no limit.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record RetainedBytesGrant([property: Id(0)] long? UpTo, [property: Id(1)] TimeSpan Lease);

/// <summary>
/// One event of a run's checkpoint history, kept by the run grain (bounded, oldest dropped): a committed save,
/// or a rank loading a checkpoint (a resume).
/// </summary>
/// <param name="Kind">"save" or "load".</param>
/// <param name="Bytes">A save: bytes it wrote. A load: tensor bytes read.</param>
/// <param name="Seconds">A save: first Begin to durable commit. A load: the rank's load, verification included.</param>
/// <param name="RankSeconds">A save: the ranks' Begin-to-report seconds, where this activation saw both; a summary, so the
/// history stays the same size whatever the world size.</param>
/// <param name="StallSeconds">A save: the longest training stall a rank reported (async saves; a sync save's stall is its rank seconds).</param>
/// <param name="Rank">A load: the rank that loaded.</param>
[GenerateSerializer, Immutable]
public sealed record HistoryEntry(
    [property: Id(0)] string Kind,
    [property: Id(1)] string Name,
    [property: Id(2)] DateTimeOffset AtUtc,
    [property: Id(3)] long Bytes,
    [property: Id(4)] double Seconds,
    [property: Id(5)] long Epoch,
    [property: Id(6)] RankSeconds? RankSeconds = null,
    [property: Id(7)] double? StallSeconds = null,
    [property: Id(8)] int? Rank = null)
{
    public const string Save = "save";
    public const string Load = "load";
}

/// <summary>A rank tells its run grain it loaded a checkpoint (for the history).</summary>
[GenerateSerializer, Immutable]
public sealed record LoadReport(
    [property: Id(0)] string Name,
    [property: Id(1)] int Rank,
    [property: Id(2)] long Epoch,
    [property: Id(3)] double Seconds,
    [property: Id(4)] long Bytes);

/// <summary>The spread of the ranks' Begin-to-report seconds of one save, and the slowest rank.</summary>
[GenerateSerializer, Immutable]
public sealed record RankSeconds(
    [property: Id(0)] int Ranks,
    [property: Id(1)] double Min,
    [property: Id(2)] double Median,
    [property: Id(3)] double Max,
    [property: Id(4)] int SlowestRank)
{
    /// <summary>The summary of per-rank seconds (null where unknown); null when no rank's are known.</summary>
    public static RankSeconds? Of(IReadOnlyList<double?> perRank)
    {
        var known = perRank.Select((seconds, rank) => (Seconds: seconds, Rank: rank)).Where(r => r.Seconds is not null).Select(r => (Seconds: r.Seconds!.Value, r.Rank)).ToList();
        if (known.Count == 0) return null;
        var sorted = known.Select(r => r.Seconds).Order().ToList();
        var slowest = known.MaxBy(r => r.Seconds);
        return new RankSeconds(known.Count, sorted[0], sorted[sorted.Count / 2], sorted[^1], slowest.Rank);
    }
}
