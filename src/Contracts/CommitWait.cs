namespace Checkpointing.Contracts;

[GenerateSerializer, Immutable]
public sealed record CommitWait(
    [property: Id(0)] CommitWaitStatus Status,
    [property: Id(1)] CheckpointRecord? Record,
    [property: Id(2)] int RanksMissing);
