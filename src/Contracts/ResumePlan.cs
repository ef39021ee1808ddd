namespace Checkpointing.Contracts;

/// <summary>
/// Where a rank may resume from. <paramref name="Memory"/>: a committed memory-tier checkpoint newer than the durable tag
/// and the holders of this rank's snapshot, its own host's first; the rank fetches it and every rank agrees before any
/// uses it (<see cref="ICheckpointProtocol.AgreeResume"/>). Null: resume from <paramref name="Durable"/> (null: from scratch).
/// <paramref name="Reason"/> says why, in one sentence.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record ResumePlan(
    [property: Id(0)] MemoryResumeSource? Memory,
    [property: Id(1)] string? Durable,
    [property: Id(2)] string Reason);
