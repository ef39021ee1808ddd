using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// A tensor that stays in its shard: writing it copies its byte range from the store in bounded chunks,
/// so a checkpoint can be rewritten (made self-contained) without holding its state in memory.
/// </summary>
/// <remarks>A compressed tensor (docs/compression.md) is read whole, decoded and checked against its hash, then written out decoded;
/// a block-mapped one is assembled from its blocks, each checked against its hash, in chunks.</remarks>
public sealed class StoredTensor(ICheckpointStore store, string shardKey, long offset, TensorDType dtype, long[] shape, TensorInfo? encoded = null,
    BlockTensorReader? blocks = null) : ITensorSource
{
    private const int ChunkBytes = 4 << 20;

    /// <inheritdoc/>
    public TensorDType DType { get; } = dtype;

    /// <inheritdoc/>
    public long[] Shape { get; } = shape;

    /// <summary>
    /// Copies the tensor's byte range from its shard to <paramref name="destination"/> in reads of at most 4 MiB, blocking
    /// on each. The bytes are not checked here: verify the checkpoint first.
    /// </summary>
    public void WriteTo(Stream destination)
    {
        if (encoded is not null)
        {
            var stored = GC.AllocateUninitializedArray<byte>(checked((int)encoded.ByteLength));
            store.ReadRangeAsync(shardKey, offset, stored).GetAwaiter().GetResult();
            destination.Write(ShardEncoding.DecodeChecked(stored, encoded, shardKey, $"the tensor at byte {offset}"));
            return;
        }
        // Plain bytes are one range of the shard; a block-mapped tensor's are assembled from its blocks.
        TensorRangeReader read = blocks is not null ? blocks.ReadAsync : (part, at, ct) => store.ReadRangeAsync(shardKey, offset + at, part, ct);
        var total = TensorDTypes.ByteLength(DType, Shape);
        var buffer = new byte[(int)Math.Min(ChunkBytes, Math.Max(total, 1))];
        for (long at = 0; at < total; at += buffer.Length)
        {
            var chunk = buffer.AsMemory(0, (int)Math.Min(buffer.Length, total - at));
            read(chunk, at, CancellationToken.None).GetAwaiter().GetResult();
            destination.Write(chunk.Span);
        }
    }

    /// <summary>
    /// The state of a checkpoint with every tensor a <see cref="StoredTensor"/> over the shard that holds it
    /// (its own or a reused one). Reads only the shards' headers; verify the checkpoint first.
    /// </summary>
    public static async Task<OrderedDictionary<string, object?>> StateOfAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, CancellationToken ct = default)
    {
        var dataStarts = new long[manifest.Shards.Count];
        for (var i = 0; i < manifest.Shards.Count; i++)
        {
            var key = StoreLayout.ShardKey(checkpointKey, manifest.Shards[i]);
            await using var stream = await store.OpenReadAsync(key, ct).ConfigureAwait(false);
            dataStarts[i] = SafetensorsHeader.Read(stream, manifest.Shards[i].Bytes, key).DataStart;
        }
        var headers = new ShardHeaders(store, checkpointKey, manifest);
        StoredTensor Stored(string key, TensorInfo t)
        {
            TensorDTypes.TryParse(t.DType, out var dtype);
            var blocks = t.Encoding == BlockMap.Encoding ? new BlockTensorReader(store, checkpointKey, manifest, headers, new StoredChunk(key, TensorLayout.Whole(t.Shape), t)) : null;
            return new StoredTensor(store, StoreLayout.ShardKey(checkpointKey, manifest.Shards[t.Shard]), dataStarts[t.Shard] + t.DataOffsets[0], dtype, t.Shape,
                t.Encoding == BytegroupCodec.Name ? t : null, blocks);
        }
        return StateTree.Expand(manifest.State, key =>
        {
            if (manifest.Tensors.TryGetValue(key, out var whole)) return Stored(key, whole);
            // A sharded tensor stays sharded: its chunks, each over the bytes that hold it.
            var sharded = StoredTensorChunks.Of(manifest, key);
            return new TensorParts(sharded.Shape, sharded.Chunks.Select(c => (c.Layout, (ITensorSource)Stored(c.Key, c.Info))).ToList());
        });
    }
}
