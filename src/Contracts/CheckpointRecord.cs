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
