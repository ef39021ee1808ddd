namespace Checkpointing.Benchmarks.Throughput;

/// <summary>Timings of one row: ours and its reference, one sample of each per repetition, taken next to each other.</summary>
public sealed record PairedTimings(string Row, string Reference, IReadOnlyList<double> Ours, IReadOnlyList<double> ReferenceSeconds)
{
    public double OursMedian => Median(Ours);
    public double ReferenceMedian => Median(ReferenceSeconds);

    /// <summary>Ratio of the medians.</summary>
    public double Ratio => OursMedian / ReferenceMedian;

    /// <summary>Median of the per-repetition ratios: each pair ran back to back, so this cancels slow drifts of the disk.</summary>
    public double PairRatioMedian => Median(Ours.Zip(ReferenceSeconds, (a, b) => a / b).ToList());

    public static double Median(IReadOnlyList<double> values)
    {
        var sorted = values.Order().ToList();
        var mid = sorted.Count / 2;
        return sorted.Count % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
