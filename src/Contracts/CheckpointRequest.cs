namespace Checkpointing.Contracts;

/// <summary>
/// An operator's or scheduler's request that the run checkpoint as soon as possible (e.g. preemption
/// notice). <see cref="SaveAtIteration"/> is fixed by the first agent that sees the request, so that
/// every rank saves at the same iteration.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record CheckpointRequest(
    [property: Id(0)] string Id,
    [property: Id(1)] string Reason,
    [property: Id(2)] DateTimeOffset RequestedUtc,
    [property: Id(3)] long? SaveAtIteration = null);
