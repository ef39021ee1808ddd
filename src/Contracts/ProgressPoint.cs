namespace Checkpointing.Contracts;

/// <summary>One point of a run's progress series (<see cref="IRunReads.GetProgress"/>): at most one per second, the newest kept.</summary>
/// <param name="AtUtc">When the heartbeat carrying it arrived.</param>
/// <param name="Iteration">The job's iteration then (the lowest any rank reported).</param>
/// <param name="Loss">Rank 0's loss then, if reported.</param>
/// <param name="StepSeconds">The step time rank 0 reported, if any.</param>
[GenerateSerializer, Immutable]
public sealed record ProgressPoint(
    [property: Id(0)] DateTimeOffset AtUtc,
    [property: Id(1)] long Iteration,
    [property: Id(2)] double? Loss,
    [property: Id(3)] double? StepSeconds);
