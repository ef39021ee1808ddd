namespace Checkpointing.Contracts;

/// <summary>A rank of attempt <paramref name="Epoch"/> asks where to resume from; <paramref name="Host"/>: the host it runs on (its own holder's), if it has one.</summary>
[GenerateSerializer, Immutable]
public sealed record ResumeRequest(
    [property: Id(0)] long Epoch,
    [property: Id(1)] int Rank,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] string? Host);
