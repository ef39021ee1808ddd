namespace Checkpointing.Contracts;

/// <summary>A rank of the current attempt its run grain no longer hears from.</summary>
/// <param name="Rank">The rank.</param>
/// <param name="SinceUtc">Its last heartbeat; for a rank never heard from, when the attempt's first heartbeat arrived.</param>
[GenerateSerializer, Immutable]
public sealed record MissingRank(
    [property: Id(0)] int Rank,
    [property: Id(1)] DateTimeOffset SinceUtc);
