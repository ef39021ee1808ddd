namespace Checkpointing.Abstractions;

/// <summary>A tensor stored in chunks: its dtype, global shape, and the chunks that together hold each element exactly once.</summary>
public sealed record ShardedTensorInfo(string DType, long[] Shape, IReadOnlyList<TensorChunk> Chunks)
{
    /// <summary>The index entries holding the chunks of <paramref name="sharded"/>: entries the state never references directly.</summary>
    public static HashSet<string> ChunkKeys(IEnumerable<ShardedTensorInfo> sharded) =>
        sharded.SelectMany(t => t.Chunks).Select(c => c.Tensor).ToHashSet(StringComparer.Ordinal);
}
