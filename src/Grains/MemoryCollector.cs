using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The ranks' reports of one memory-tier checkpoint, held in memory until every rank of the world is in.</summary>
internal sealed class MemoryCollector(long epoch, long iteration, int worldSize)
{
    private readonly Dictionary<int, MemorySnapshotReport> _reports = [];

    public long Epoch => epoch;
    public long Iteration => iteration;
    public int WorldSize => worldSize;
    /// <summary>Completes with true when the checkpoint committed, false when it never can (superseded, a new attempt).</summary>
    public TaskCompletionSource<bool> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    public int Missing => worldSize - _reports.Count;

    /// <summary>Holds <paramref name="report"/>; the same rank reporting again replaces its report.</summary>
    public void Add(MemorySnapshotReport report) => _reports[report.Rank] = report;

    /// <summary>Where every rank's snapshot lives, by rank.</summary>
    public IReadOnlyList<RankHolders> Ranks() => _reports.Values.OrderBy(r => r.Rank).Select(r => new RankHolders(r.Rank, r.Bytes, r.Holders)).ToList();
}
