namespace Checkpointing.Contracts;

/// <summary>
/// The answer to a memory snapshot report: whether that checkpoint committed (every rank's snapshot is held), how many ranks
/// are still missing, and the iteration of the run's committed memory checkpoint of the reporter's attempt, if any: snapshots
/// older than it are superseded and may be freed.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record MemoryCommitAck(
    [property: Id(0)] bool Committed,
    [property: Id(1)] int RanksMissing,
    [property: Id(2)] long? CommittedIteration = null);
