namespace Checkpointing.Contracts;

/// <summary>The answer to a shard report: committed (every rank is in), or how many ranks are still missing.</summary>
[GenerateSerializer, Immutable]
public sealed record ShardAck(
    [property: Id(0)] bool Committed,
    [property: Id(1)] int RanksMissing,
    [property: Id(2)] CheckpointRecord? Record);
