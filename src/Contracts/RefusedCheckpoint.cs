namespace Checkpointing.Contracts;

/// <summary>A checkpoint found in the store that a catalog recovery did not adopt, and why.</summary>
[GenerateSerializer, Immutable]
public sealed record RefusedCheckpoint([property: Id(0)] string Name, [property: Id(1)] string Reason);
