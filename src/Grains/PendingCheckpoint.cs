using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// A checkpoint between the first rank's Begin and its commit: O(1) in ranks and tensors. The ranks'
/// reports are held by the activation only (<see cref="CommitCollector"/>); after a failover the
/// ranks send them again.
/// </summary>
[GenerateSerializer]
public sealed class PendingCheckpoint
{
    /// <summary>The checkpoint's name, which is also its folder's; a run has at most one pending attempt per name.</summary>
    [Id(0)] public required string Name { get; init; }
    /// <summary>8 random lowercase hex digits, part of every shard name of this attempt, so that it never overwrites another attempt's shards.</summary>
    [Id(1)] public required string AttemptId { get; init; }
    /// <summary>The job attempt whose ranks began it; once a newer attempt starts, it is abandoned.</summary>
    [Id(2)] public required long Epoch { get; init; }
    /// <summary>How many ranks save it; it commits when each of them has reported its shard.</summary>
    [Id(3)] public required int WorldSize { get; init; }
    /// <summary>The training iteration it saves, as the ranks began it; null when they gave none.</summary>
    [Id(4)] public required long? Iteration { get; init; }
    /// <summary>When the first rank began it; <c>ckpt_commit_duration</c> and the history measure from here.</summary>
    [Id(5)] public required DateTimeOffset StartedUtc { get; init; }
    /// <summary>The first Begin, or (in memory) the latest Begin or report; a checkpoint idle past the pending timeout is abandoned.</summary>
    [Id(8)] public DateTimeOffset LastProgressUtc { get; set; }
    /// <summary>The tensor list every rank began with; the union of the reports must match it.</summary>
    [Id(9)] public required TensorListSummary Tensors { get; init; }
}
