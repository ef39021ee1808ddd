namespace Checkpointing.Abstractions;

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="Shape">The stored tensor's extent in every dimension (empty for a scalar); for a chunk of a sharded tensor, the chunk's own shape.</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header: the bytes stored, encoded or not.</param>
/// <param name="Hash">"xxh128:" and 32 hex digits: XxHash128 of the tensor's bytes (decoded), recorded by incremental, sharded and compressed saves; null otherwise.</param>
/// <param name="Encoding">How the stored bytes encode the tensor's (docs/compression.md), e.g. "bytegroup"; null: stored as they are.</param>
/// <param name="RawLength">For an encoded tensor, its length in bytes once decoded (dtype × shape); null otherwise.</param>
public sealed record TensorInfo(int Shard, string DType, long[] Shape, long[] DataOffsets, string? Hash = null, string? Encoding = null, long? RawLength = null)
{
    /// <summary>The bytes the shard stores for the tensor, the span of <see cref="DataOffsets"/>.</summary>
    public long ByteLength => DataOffsets[1] - DataOffsets[0];

    /// <summary>The tensor's own size in bytes: <see cref="RawLength"/> when encoded, else <see cref="ByteLength"/>.</summary>
    public long LogicalLength => RawLength ?? ByteLength;
}
