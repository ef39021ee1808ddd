namespace Checkpointing.Contracts;

/// <summary>Phase two: a rank's shard is durable in the store with this length and checksum.</summary>
/// <param name="Name">The checkpoint, as the rank began it.</param>
/// <param name="AttemptId">The attempt <see cref="ICheckpointProtocol.BeginCheckpoint"/> returned; a report for an attempt that is no
/// longer pending (expired, aborted, never begun) is refused.</param>
/// <param name="Rank">The reporting rank, 0 to world size - 1.</param>
/// <param name="Epoch">The job attempt (epoch) the rank runs in; any epoch but the run's current one is refused with <see cref="StaleAttemptException"/>.</param>
/// <param name="Shard">The shard this rank wrote: its path in the checkpoint's folder, its exact length in bytes and its CRC-64.</param>
/// <param name="Tensors">Every tensor this rank wrote or reused, by key: the shard holding it (this rank's index, or world size + i
/// for <paramref name="Reused"/>[i]), its dtype, shape and byte range in that shard's data section.</param>
/// <param name="StateJson">The non-tensor state tree (manifest "state"), sent by rank 0 only.</param>
/// <param name="StallSeconds">How long this rank's training waited for the save, when the agent measured it (async saves: the snapshot copy).</param>
/// <param name="Reused">An incremental save's shards of earlier checkpoints (<see cref="ShardInfo.Checkpoint"/> set) whose
/// bytes tensors of <paramref name="Tensors"/> reference, as shard index <c>world size + i</c>; null or empty otherwise.</param>
/// <param name="Sharded">This rank's chunks of sharded tensors (docs/format.md#sharded-tensors-and-resharding): per tensor its dtype, global shape and the
/// chunks this rank holds, whose bytes are entries of <paramref name="Tensors"/> outside the plan's share; null when none.</param>
[GenerateSerializer, Immutable]
public sealed record ShardReport(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] long Epoch,
    [property: Id(4)] ShardInfo Shard,
    [property: Id(5)] IReadOnlyDictionary<string, TensorInfo> Tensors,
    [property: Id(6)] string? StateJson,
    [property: Id(7)] IReadOnlyList<ShardInfo>? Reused = null,
    [property: Id(8)] double? StallSeconds = null,
    [property: Id(9)] IReadOnlyDictionary<string, ShardedTensorInfo>? Sharded = null)
{
    /// <summary>The keys of <see cref="Tensors"/> that hold chunks of sharded tensors rather than the plan's share.</summary>
    public IReadOnlySet<string> ChunkKeys => ShardedTensorInfo.ChunkKeys(Sharded?.Values ?? []);
}
