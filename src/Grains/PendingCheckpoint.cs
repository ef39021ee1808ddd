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
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public required string AttemptId { get; init; }
    [Id(2)] public required long Epoch { get; init; }
    [Id(3)] public required int WorldSize { get; init; }
    [Id(4)] public required long? Iteration { get; init; }
    [Id(5)] public required DateTimeOffset StartedUtc { get; init; }
    /// <summary>The first Begin, or (in memory) the latest Begin or report; a checkpoint idle past the pending timeout is abandoned.</summary>
    [Id(8)] public DateTimeOffset LastProgressUtc { get; set; }
    /// <summary>The tensor list every rank began with; the union of the reports must match it.</summary>
    [Id(9)] public required TensorListSummary Tensors { get; init; }
}
