namespace Checkpointing.Contracts;

/// <summary>The grain's answer to Begin: the attempt every rank of this save writes under.</summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointAttempt(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] int WorldSize,
    [property: Id(4)] string CheckpointPrefix,
    [property: Id(5)] string ShardPath);
