namespace Checkpointing.Contracts;

/// <summary>A tenant's limits. Null means unlimited.</summary>
[GenerateSerializer, Immutable]
public sealed record TenantLimits(
    [property: Id(0)] int? MaxRuns,
    [property: Id(1)] long? MaxRetainedBytes);
