namespace Checkpointing.Abstractions;

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="Shape">The stored tensor's extent in every dimension (empty for a scalar); for a chunk of a sharded tensor, the chunk's own shape.</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header.</param>
/// <param name="Hash">"xxh128:" and 32 hex digits: XxHash128 of the tensor's bytes, recorded by incremental saves; null otherwise.</param>
public sealed record TensorInfo(int Shard, string DType, long[] Shape, long[] DataOffsets, string? Hash = null)
{
    /// <summary>The tensor's size in bytes, the span of <see cref="DataOffsets"/>.</summary>
    public long ByteLength => DataOffsets[1] - DataOffsets[0];
}
