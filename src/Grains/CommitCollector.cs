using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Grains;

/// <summary>
/// The reports of one pending checkpoint, held in the run grain's memory (docs/cluster.md#control-plane-at-fleet-scale: no state
/// write per report), and the outcome the reporting ranks wait for.
/// </summary>
internal sealed class CommitCollector(PendingCheckpoint pending)
{
    private readonly ShardReport?[] _reports = new ShardReport?[pending.WorldSize];
    /// <summary>Rank 0's non-tensor state, parsed once when its report was checked.</summary>
    private JsonObject? _state;

    public PendingCheckpoint Pending { get; } = pending;
    public int Received { get; private set; }
    public int Missing => Pending.WorldSize - Received;

    /// <summary>Completed when the commit is durable, failed when the checkpoint is abandoned.</summary>
    public TaskCompletionSource<CheckpointRecord> Outcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public bool Holds(int rank) => _reports[rank] is not null;

    /// <summary>When each rank's report first arrived at this activation (for the history).</summary>
    public DateTimeOffset?[] ReportedAt { get; } = new DateTimeOffset?[pending.WorldSize];

    /// <summary>The longest training stall a rank reported with its shard.</summary>
    public double? LongestStall => _reports.Max(r => r?.StallSeconds);

    /// <summary>Records a report (with rank 0's parsed state); the same report again is a no-op, a different one from the same rank is refused.</summary>
    public void Add(ShardReport report, JsonObject? state, DateTimeOffset at)
    {
        if (_reports[report.Rank] is { } earlier)
        {
            if (earlier.Shard != report.Shard)
                throw new RunRefusedException($"Rank {report.Rank} already reported {earlier.Shard.Path} ({earlier.Shard.Checksum}) for {report.Name}; a different report is refused.");
            return;
        }
        _reports[report.Rank] = report;
        ReportedAt[report.Rank] = at;
        if (report.Rank == 0) _state = state;
        Received++;
    }

    /// <summary>Every rank's chunks of each sharded tensor, in rank order; the ranks must agree on its dtype and global shape.</summary>
    private Dictionary<string, ShardedTensorInfo> MergeSharded(List<ShardReport> reports)
    {
        var merged = new Dictionary<string, (ShardedTensorInfo First, List<TensorChunk> Chunks)>(StringComparer.Ordinal);
        foreach (var report in reports)
        {
            foreach (var (key, part) in report.Sharded ?? new Dictionary<string, ShardedTensorInfo>())
            {
                if (!merged.TryGetValue(key, out var tensor)) merged[key] = tensor = (part, []);
                else if (tensor.First.DType != part.DType || !tensor.First.Shape.SequenceEqual(part.Shape))
                    throw new RunRefusedException($"Rank {report.Rank} holds '{key}' of {Pending.Name} as {part.DType}[{string.Join(", ", part.Shape)}], another rank as {tensor.First.DType}[{string.Join(", ", tensor.First.Shape)}].");
                tensor.Chunks.AddRange(part.Chunks);
            }
        }
        return merged.ToDictionary(m => m.Key, m => m.Value.First with { Chunks = m.Value.Chunks }, StringComparer.Ordinal);
    }

    /// <summary>
    /// The manifest of the complete checkpoint. The union of the shards must be exactly the tensor list
    /// the ranks began with, and each rank's shard exactly its share of it (the split every rank computed).
    /// </summary>
    public CheckpointManifest BuildManifest(string run, DateTimeOffset createdUtc)
    {
        var reports = _reports.Select(r => r ?? throw new InvalidOperationException("Not every rank has reported.")).ToList();
        var builder = new ManifestBuilder(reports.Select(r => r.Shard));
        var reusedRanges = new HashSet<(ShardInfo, long, long)>();
        foreach (var report in reports)
        {
            foreach (var (key, reported) in report.Tensors)
            {
                var reusedShard = reported.Shard == report.Rank ? null : report.Reused![reported.Shard - Pending.WorldSize];
                if (reusedShard is not null && (reported.ByteLength == 0 || !reusedRanges.Add((reusedShard, reported.DataOffsets[0], reported.DataOffsets[1]))))
                    throw new RunRefusedException($"Tensor '{key}' reuses an empty range, or one another tensor of {Pending.Name} reuses too.");
                if (!(reusedShard is null ? builder.TryAdd(key, reported) : builder.TryAddReused(key, reported, reusedShard)))
                    throw new RunRefusedException($"Tensor '{key}' is in the shards of two ranks (rank {report.Rank} and another): each slice of a sharded tensor must be saved by one rank.");
            }
            // Shards whose blocks a block-mapped tensor references (docs/compression.md#block-reuse) are listed although no index entry points into them.
            foreach (var shard in report.Reused ?? []) builder.AddReferenced(shard);
        }
        var tensors = builder.Tensors;
        var sharded = MergeSharded(reports);
        if (ShardedTensorCheck.Problem(tensors, sharded) is { } problem)
            throw new RunRefusedException($"The ranks' slices do not make up the sharded tensors of {Pending.Name}: {problem}.");
        var chunkKeys = ShardedTensorInfo.ChunkKeys(sharded.Values);
        var sizes = tensors.Where(t => !chunkKeys.Contains(t.Key)).Select(t => new TensorSize(t.Key, t.Value.LogicalLength)).ToList();
        var summary = TensorListSummary.Of(sizes);
        if (summary != Pending.Tensors)
            throw new RunRefusedException($"The ranks' shards hold {summary.Count} tensors ({summary.TotalBytes:N0} bytes), not the {Pending.Tensors.Count} tensors ({Pending.Tensors.TotalBytes:N0} bytes) the ranks began {Pending.Name} with.");
        var split = ShardPlanner.Split(sizes, Pending.WorldSize, t => t.Key, t => t.Bytes);
        foreach (var report in reports)
        {
            var planned = split[report.Rank].Select(t => t.Key).Order(StringComparer.Ordinal);
            if (!report.Tensors.Keys.Where(k => !chunkKeys.Contains(k)).Order(StringComparer.Ordinal).SequenceEqual(planned))
                throw new RunRefusedException($"Rank {report.Rank}'s shard does not hold the tensors its plan assigned ({split[report.Rank].Count} tensors).");
        }
        return builder.Build(new CheckpointIdentity(run, Pending.Name, Pending.Iteration, Pending.WorldSize), createdUtc,
            _state ?? throw new InvalidOperationException("Rank 0's report came without its checked state."), sharded);
    }
}
