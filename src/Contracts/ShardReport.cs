namespace Checkpointing.Contracts;

/// <summary>Phase two: a rank's shard is durable in the store with this length and checksum.</summary>
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
