namespace Checkpointing.Contracts;

/// <summary>The spread of the ranks' Begin-to-report seconds of one save, and the slowest rank.</summary>
[GenerateSerializer, Immutable]
public sealed record RankSeconds(
    [property: Id(0)] int Ranks,
    [property: Id(1)] double Min,
    [property: Id(2)] double Median,
    [property: Id(3)] double Max,
    [property: Id(4)] int SlowestRank)
{
    /// <summary>The summary of per-rank seconds (null where unknown); null when no rank's are known.</summary>
    public static RankSeconds? Of(IReadOnlyList<double?> perRank)
    {
        var known = perRank.Select((seconds, rank) => (Seconds: seconds, Rank: rank)).Where(r => r.Seconds is not null).Select(r => (Seconds: r.Seconds!.Value, r.Rank)).ToList();
        if (known.Count == 0) return null;
        var sorted = known.Select(r => r.Seconds).Order().ToList();
        var slowest = known.MaxBy(r => r.Seconds);
        return new RankSeconds(known.Count, sorted[0], sorted[sorted.Count / 2], sorted[^1], slowest.Rank);
    }
}
