namespace Checkpointing.Contracts;

/// <summary>A checkpoint begun but not yet committed, as <see cref="RunView.Pending"/> lists it.</summary>
/// <param name="Name">The checkpoint's name.</param>
/// <param name="Epoch">The attempt (epoch) that began it; a newer attempt abandons it.</param>
/// <param name="WorldSize">How many ranks must report before it commits.</param>
/// <param name="RanksReported">Ranks whose report this activation holds (reports live in memory; after a failover the ranks send them again).</param>
/// <param name="StartedUtc">When the first rank's Begin arrived.</param>
/// <param name="MissingRanks">Ranks whose report this activation does not hold yet, lowest first.</param>
[GenerateSerializer, Immutable]
public sealed record PendingView(
    [property: Id(0)] string Name,
    [property: Id(1)] long Epoch,
    [property: Id(2)] int WorldSize,
    [property: Id(3)] int RanksReported,
    [property: Id(4)] DateTimeOffset StartedUtc,
    [property: Id(5)] IReadOnlyList<int>? MissingRanks = null);
