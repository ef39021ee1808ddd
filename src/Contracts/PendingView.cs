namespace Checkpointing.Contracts;

[GenerateSerializer, Immutable]
public sealed record PendingView(
    [property: Id(0)] string Name,
    [property: Id(1)] long Epoch,
    [property: Id(2)] int WorldSize,
    /// <summary>Ranks whose report this activation holds (reports live in memory; after a failover the ranks send them again).</summary>
    [property: Id(3)] int RanksReported,
    [property: Id(4)] DateTimeOffset StartedUtc);
