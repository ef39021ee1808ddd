namespace Checkpointing.Contracts;

/// <summary>The answer to a memory snapshot report: committed (every rank's snapshot is held), or how many ranks are still missing (0 and not committed: a newer one committed first).</summary>
[GenerateSerializer, Immutable]
public sealed record MemoryCommitAck(
    [property: Id(0)] bool Committed,
    [property: Id(1)] int RanksMissing);
