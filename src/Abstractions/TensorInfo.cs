namespace Checkpointing.Abstractions;

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header.</param>
/// <param name="Hash">"xxh128:" and 32 hex digits: XxHash128 of the tensor's bytes, recorded by incremental saves; null otherwise.</param>
public sealed record TensorInfo(int Shard, string DType, long[] Shape, long[] DataOffsets, string? Hash = null)
{
    public long ByteLength => DataOffsets[1] - DataOffsets[0];
}
