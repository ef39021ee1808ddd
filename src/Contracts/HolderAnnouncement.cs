namespace Checkpointing.Contracts;

/// <summary>A rank tells its run grain which holder keeps its memory-tier snapshots on its own host (docs/memory-tier.md).</summary>
[GenerateSerializer, Immutable]
public sealed record HolderAnnouncement(
    [property: Id(0)] long Epoch,
    [property: Id(1)] int Rank,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] HolderRef Holder);
