namespace Checkpointing.Contracts;

/// <summary>A run's health as its grain computes it now (<see cref="RunView.Health"/>).</summary>
/// <param name="State">The run's state.</param>
/// <param name="Detail">One sentence on why, for people ("rank 1 silent since 12:03:04 UTC").</param>
/// <param name="MissingRanks">Ranks silent for longer than the missing limit, lowest first.</param>
/// <param name="WorldSize">Ranks the current attempt has, from their heartbeats; 0 before the first.</param>
/// <param name="LastHeartbeatUtc">The newest heartbeat of any rank of the current attempt.</param>
/// <param name="Iteration">The lowest iteration any live rank reported (the job's progress), if any.</param>
/// <param name="Loss">Rank 0's (else the lowest live rank's) last reported loss.</param>
/// <param name="StepSeconds">The median of the live ranks' last step times.</param>
/// <param name="ProgressUtc">When the job's iteration last advanced.</param>
[GenerateSerializer, Immutable]
public sealed record RunHealthView(
    [property: Id(0)] RunHealth State,
    [property: Id(1)] string Detail,
    [property: Id(2)] IReadOnlyList<MissingRank> MissingRanks,
    [property: Id(3)] int WorldSize,
    [property: Id(4)] DateTimeOffset? LastHeartbeatUtc,
    [property: Id(5)] long? Iteration,
    [property: Id(6)] double? Loss,
    [property: Id(7)] double? StepSeconds,
    [property: Id(8)] DateTimeOffset? ProgressUtc);
