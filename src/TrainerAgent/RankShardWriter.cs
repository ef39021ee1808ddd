using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// The data-plane half of a cluster save: one rank streams the tensors its <see cref="SavePlan"/>
/// assigns into its shard in the store, then describes the shard for the run grain.
/// </summary>
internal static class RankShardWriter
{
    /// <param name="store">The store the shard is written to (the data plane).</param>
    /// <param name="plan">This rank's share and the shard's key (<see cref="SavePlan.ShardKey"/>).</param>
    /// <param name="epoch">The job attempt the report carries.</param>
    /// <param name="tensors">At least the plan's tensors, and this rank's chunks of sharded tensors (all written); other whole
    /// tensors (another rank's share) are ignored.</param>
    /// <param name="stateJson">The non-tensor state; rank 0 must send it.</param>
    /// <param name="progress">Gets each written tensor's byte count as it completes; null for none.</param>
    /// <param name="cancellationToken">Cancels the write; store writes are atomic, so no partial shard appears under its key.</param>
    /// <param name="reuseFrom">For an incremental save (null: not incremental, no hashes recorded), the run's last committed checkpoint,
    /// if any: a tensor of this rank's share whose key, hash, dtype and shape equal one it stores is referenced there instead of
    /// written (the shard may end up empty).</param>
    /// <param name="compression">How the shard's tensors are compressed (docs/compression.md); null: stored as they are.</param>
    /// <param name="blockReuse">With <paramref name="reuseFrom"/>: which large tensors write only their changed blocks (docs/compression.md#block-reuse); the
    /// earlier shards their maps name are reported as reused. Null: tensors are reused or written whole.</param>
    public static async Task<ShardReport> WriteAsync(ICheckpointStore store, SavePlan plan, long epoch, IReadOnlyList<NamedTensor> tensors,
        string? stateJson, IProgress<long>? progress = null, CancellationToken cancellationToken = default, IReadOnlyList<EarlierCheckpoint>? reuseFrom = null,
        TensorCompression? compression = null, BlockReuse? blockReuse = null)
    {
        var byKey = tensors.ToDictionary(t => t.Key, StringComparer.Ordinal);
        var mine = plan.TensorKeys.Select(k => byKey.TryGetValue(k, out var t) && t.Chunk is null ? t : throw new ArgumentException($"The plan assigns tensor '{k}' to rank {plan.Rank}, which does not hold it whole.", nameof(tensors)))
            .Concat(tensors.Where(t => t.Chunk is not null)).ToList();
        // A sharded save hashes every tensor: a load into another layout reads ranges, not whole shards, and checks each tensor or chunk it reads whole.
        var hashes = TensorHash.All(reuseFrom is not null || tensors.Any(t => t.Chunk is not null) ? mine : []);
        var blocks = reuseFrom is not null && blockReuse is not null
            ? await BlockPlanner.PlanAsync(store, plan.CheckpointPrefix, reuseFrom, mine, hashes, blockReuse, cancellationToken).ConfigureAwait(false)
            : BlockPlanner.Plan.None;
        var wholes = mine.Where(t => !blocks.Entries.ContainsKey(t.Key)).ToList();
        var claimed = reuseFrom is null ? [] : await ReusableBytes.ClaimAsync(store, plan.CheckpointPrefix, reuseFrom!, wholes, hashes, sameKeyOnly: true, cancellationToken).ConfigureAwait(false);
        var written = await StoredShard.WriteAsync(store, plan.ShardKey, mine.Where(t => !claimed.ContainsKey(t.Key)).Select(blocks.Stored).ToList(), progress, cancellationToken,
            compression, hashes, blocks.Encoded).ConfigureAwait(false);
        var index = written.Index(plan.Rank, hashes).ToDictionary(e => e.Key, e => e.Info, StringComparer.Ordinal);
        var reused = new List<ShardInfo>();
        foreach (var (key, (shard, tensor)) in claimed) index[key] = tensor with { Shard = plan.WorldSize + reused.IndexOrAdd(shard) };
        foreach (var shard in blocks.Referenced) reused.IndexOrAdd(shard);
        return new ShardReport(plan.Name, plan.AttemptId, plan.Rank, epoch, new ShardInfo(plan.ShardPath, written.Length, written.Checksum), index, stateJson,
            reused.Count > 0 ? reused : null, Sharded: ShardedTensors.Describe(mine) is { Count: > 0 } sharded ? sharded : null);
    }
}
