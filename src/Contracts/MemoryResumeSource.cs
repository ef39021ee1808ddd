namespace Checkpointing.Contracts;

/// <summary>A memory-tier checkpoint a rank may resume from (taken in attempt <paramref name="Epoch"/>) and the holders of its snapshot, to try in order.</summary>
[GenerateSerializer, Immutable]
public sealed record MemoryResumeSource(
    [property: Id(0)] string Name,
    [property: Id(1)] long Iteration,
    [property: Id(2)] long Epoch,
    [property: Id(3)] IReadOnlyList<HolderRef> Sources);
