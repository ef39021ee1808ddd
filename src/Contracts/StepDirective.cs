namespace Checkpointing.Contracts;

/// <summary>What an agent should do at this step, beyond its periodic schedule.</summary>
[GenerateSerializer, Immutable]
public sealed record StepDirective(
    [property: Id(0)] CheckpointRequest? CheckpointNow,
    [property: Id(1)] PeriodicPolicy Policy);
