namespace Checkpointing.Contracts;

/// <summary>Where a rank sends each memory-tier snapshot: its own holder first, then the holders that keep its replicas.</summary>
[GenerateSerializer, Immutable]
public sealed record MemoryPlacement(
    [property: Id(0)] IReadOnlyList<HolderRef> Holders);
