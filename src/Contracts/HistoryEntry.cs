namespace Checkpointing.Contracts;

/// <summary>
/// One event of a run's checkpoint history, kept by the run grain (bounded, oldest dropped): a committed save,
/// a rank loading a checkpoint (a resume), or a resume that fell back from the memory tier to the durable one.
/// </summary>
/// <param name="Kind">"save", "load" or "fallback" (<see cref="Save"/>, <see cref="Load"/>, <see cref="Fallback"/>).</param>
/// <param name="Name">The checkpoint saved or loaded.</param>
/// <param name="AtUtc">A save: when it committed. A load: when the grain recorded it.</param>
/// <param name="Bytes">A save: bytes it wrote. A load: tensor bytes read.</param>
/// <param name="Seconds">A save: first Begin to durable commit. A load: the rank's load, verification included.</param>
/// <param name="Epoch">The attempt (epoch) the save was begun under, or the loading rank ran in.</param>
/// <param name="RankSeconds">A save: the ranks' Begin-to-report seconds, where this activation saw both; a summary, so the
/// history stays the same size whatever the world size.</param>
/// <param name="StallSeconds">A save: the longest training stall a rank reported (async saves; a sync save's stall is its rank seconds).</param>
/// <param name="Rank">A load: the rank that loaded.</param>
/// <param name="Detail">A fallback: why the memory tier was not used.</param>
[GenerateSerializer, Immutable]
public sealed record HistoryEntry(
    [property: Id(0)] string Kind,
    [property: Id(1)] string Name,
    [property: Id(2)] DateTimeOffset AtUtc,
    [property: Id(3)] long Bytes,
    [property: Id(4)] double Seconds,
    [property: Id(5)] long Epoch,
    [property: Id(6)] RankSeconds? RankSeconds = null,
    [property: Id(7)] double? StallSeconds = null,
    [property: Id(8)] int? Rank = null,
    [property: Id(9)] string? Detail = null)
{
    /// <summary>The <see cref="Kind"/> of a committed save.</summary>
    public const string Save = "save";
    /// <summary>The <see cref="Kind"/> of a rank's load (a resume).</summary>
    public const string Load = "load";
    /// <summary>The <see cref="Kind"/> of a resume that could not use memory checkpoint <see cref="Name"/> and went to the durable tier (<see cref="Detail"/>: why).</summary>
    public const string Fallback = "fallback";
}
