namespace Checkpointing.Contracts;

/// <summary>
/// What rebuilding a run's catalog from the store did: the checkpoints it adopted (each verified end to end), those it
/// refused, and the last-checkpoint tag afterwards.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record CatalogRecoveryReport(
    [property: Id(0)] IReadOnlyList<string> Adopted,
    [property: Id(1)] IReadOnlyList<RefusedCheckpoint> Refused,
    [property: Id(2)] string? LastCheckpoint);
