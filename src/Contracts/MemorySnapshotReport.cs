namespace Checkpointing.Contracts;

/// <summary>
/// A rank's memory-tier snapshot <paramref name="Name"/> at <paramref name="Iteration"/> is complete on every holder in
/// <paramref name="Holders"/> (each acknowledged the whole snapshot, checksums verified), <paramref name="Bytes"/> bytes each.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record MemorySnapshotReport(
    [property: Id(0)] long Epoch,
    [property: Id(1)] int Rank,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] string Name,
    [property: Id(4)] long Iteration,
    [property: Id(5)] IReadOnlyList<HolderRef> Holders,
    [property: Id(6)] long Bytes);
