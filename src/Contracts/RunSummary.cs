namespace Checkpointing.Contracts;

/// <summary>One line of a tenant's run list (<see cref="ITenantGrain.GetRunPage"/>): what an operator scans a fleet of runs for.</summary>
/// <param name="Run">The run's name (without the tenant).</param>
/// <param name="Health">Its state now.</param>
/// <param name="LastCheckpoint">The checkpoint a resume loads, if any.</param>
/// <param name="LastCommittedUtc">When the newest checkpoint committed.</param>
/// <param name="RetainedBytes">What the run retains (its quota charge).</param>
/// <param name="CommitsLastHour">Checkpoints committed in the last hour, from the run's history.</param>
/// <param name="Iteration">The job's iteration, from heartbeats.</param>
/// <param name="LastHeartbeatUtc">The newest heartbeat of any rank of the current attempt.</param>
[GenerateSerializer, Immutable]
public sealed record RunSummary(
    [property: Id(0)] string Run,
    [property: Id(1)] RunHealth Health,
    [property: Id(2)] string? LastCheckpoint,
    [property: Id(3)] DateTimeOffset? LastCommittedUtc,
    [property: Id(4)] long RetainedBytes,
    [property: Id(5)] int CommitsLastHour,
    [property: Id(6)] long? Iteration,
    [property: Id(7)] DateTimeOffset? LastHeartbeatUtc);
