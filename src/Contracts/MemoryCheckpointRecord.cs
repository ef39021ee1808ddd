namespace Checkpointing.Contracts;

/// <summary>
/// The run's newest committed memory-tier checkpoint: every rank's snapshot held on every holder it was placed on, as the
/// ranks reported. The grain records where the bytes live, never the bytes. <paramref name="Unusable"/>: a resume found a
/// rank's snapshot on none of its holders, so no resume uses it.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record MemoryCheckpointRecord(
    [property: Id(0)] string Name,
    [property: Id(1)] long Iteration,
    [property: Id(2)] long Epoch,
    [property: Id(3)] int WorldSize,
    [property: Id(4)] DateTimeOffset CommittedUtc,
    [property: Id(5)] IReadOnlyList<RankHolders> Ranks,
    [property: Id(6)] bool Unusable = false)
{
    /// <summary>Bytes the checkpoint keeps in memory, replicas counted.</summary>
    public long HeldBytes => Ranks.Sum(r => r.Bytes * r.Holders.Count);
}
