namespace Checkpointing.Contracts;

/// <summary>
/// A rank's sign of life, sent by its agent every few seconds off the step and commit paths (<see cref="ICheckpointProtocol.Heartbeat"/>).
/// The run grain keeps only the newest per rank, in memory: heartbeats never cause a state write.
/// </summary>
/// <param name="Rank">The rank sending it.</param>
/// <param name="WorldSize">How many ranks the job has.</param>
/// <param name="Epoch">The attempt the rank runs in; a beat from another attempt is ignored.</param>
/// <param name="Iteration">The last iteration the rank stepped through; -1 before its first step.</param>
/// <param name="Loss">The loss the rank reported with that step ("loss" in the step's extra values), if any.</param>
/// <param name="StepSeconds">Seconds between the rank's last two steps, if it has stepped twice.</param>
[GenerateSerializer, Immutable]
public sealed record RankHeartbeat(
    [property: Id(0)] int Rank,
    [property: Id(1)] int WorldSize,
    [property: Id(2)] long Epoch,
    [property: Id(3)] long Iteration,
    [property: Id(4)] double? Loss,
    [property: Id(5)] double? StepSeconds);
