namespace Checkpointing.Contracts;

/// <summary>Whether a rank of attempt <paramref name="Epoch"/> fetched and verified its snapshot of memory checkpoint <paramref name="Name"/>; <paramref name="Problem"/> says why not.</summary>
[GenerateSerializer, Immutable]
public sealed record ResumeOutcome(
    [property: Id(0)] long Epoch,
    [property: Id(1)] int Rank,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] string Name,
    [property: Id(4)] bool Fetched,
    [property: Id(5)] string? Problem = null);
