using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The resume decision of attempt <paramref name="Epoch"/>, as persisted in the run's state.</summary>
[GenerateSerializer, Immutable]
public sealed record ResumeDecisionRecord(
    [property: Id(0)] long Epoch,
    [property: Id(1)] ResumeDecision Decision);
