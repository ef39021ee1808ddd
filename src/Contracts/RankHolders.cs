namespace Checkpointing.Contracts;

/// <summary>Where one rank's snapshot of a memory-tier checkpoint lives, and its size.</summary>
[GenerateSerializer, Immutable]
public sealed record RankHolders(
    [property: Id(0)] int Rank,
    [property: Id(1)] long Bytes,
    [property: Id(2)] IReadOnlyList<HolderRef> Holders);
