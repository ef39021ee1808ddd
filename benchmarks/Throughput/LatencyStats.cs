namespace Checkpointing.Benchmarks.Throughput;

/// <summary>Percentiles of a set of latencies (nearest rank); null when there are none.</summary>
public sealed class LatencyStats
{
    private readonly double[] _sorted;

    public LatencyStats(IEnumerable<double> milliseconds) => _sorted = milliseconds.Order().ToArray();

    public int Count => _sorted.Length;

    public double? Max => _sorted.Length == 0 ? null : _sorted[^1];

    /// <param name="percent">0 to 100.</param>
    public double? Percentile(double percent)
    {
        if (_sorted.Length == 0) return null;
        var rank = (int)Math.Ceiling(percent / 100 * _sorted.Length);
        return _sorted[Math.Clamp(rank - 1, 0, _sorted.Length - 1)];
    }
}
