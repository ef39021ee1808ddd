namespace Checkpointing.Contracts;

/// <summary>
/// Retained bytes a run may hold without asking its tenant again, until the lease ends (measured by
/// the run from before it asked). <see cref="UpTo"/> null: the tenant has no limit.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record RetainedBytesGrant([property: Id(0)] long? UpTo, [property: Id(1)] TimeSpan Lease);
