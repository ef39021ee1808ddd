namespace Checkpointing.Formats;

/// <summary>A tensor to be written under a key.</summary>
public sealed record NamedTensor(string Key, ITensorSource Source)
{
    /// <summary>Set when these bytes are a chunk of a sharded tensor (docs/format.md#sharded-tensors-and-resharding); <see cref="Key"/> is then the chunk's own key.</summary>
    public ChunkOf? Chunk { get; init; }

    /// <summary>The tensor's size in bytes: element count × element size of the source's dtype and shape.</summary>
    public long ByteLength => TensorDTypes.ByteLength(Source.DType, Source.Shape);
}
