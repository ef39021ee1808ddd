namespace Checkpointing.Abstractions;

/// <summary>
/// One chunk of a sharded tensor: the <see cref="CheckpointManifest.Tensors"/> entry holding its bytes and where it lies in
/// the global tensor, either a box at <paramref name="Offsets"/> (its extent is the entry's shape) or, for a flat slice
/// (a 1-D entry), the row-major elements from <paramref name="FlatOffset"/> on.
/// </summary>
public sealed record TensorChunk(string Tensor, long[]? Offsets, long? FlatOffset)
{
    /// <summary>The chunk's place in the global tensor; throws <see cref="ArgumentException"/> when it does not fit.</summary>
    public TensorLayout Layout(long[] globalShape, TensorInfo stored) => Offsets is not null
        ? TensorLayout.Box(globalShape, Offsets, stored.Shape)
        : stored.Shape.Length == 1 ? TensorLayout.Flat(globalShape, FlatOffset ?? 0, stored.Shape[0])
        : throw new ArgumentException($"A flat chunk is stored as a 1-d tensor; '{Tensor}' has {stored.Shape.Length} dimensions.");

    /// <summary>A chunk for a rank's slice; its bytes are stored under <paramref name="tensor"/>.</summary>
    public static TensorChunk Of(string tensor, TensorLayout layout) => new(tensor, layout.Offsets, layout.FlatOffset);

    /// <summary>The key a chunk's bytes are stored under: the tensor's key and where the chunk starts (unique: chunks never overlap).</summary>
    public static string KeyFor(string tensorKey, TensorLayout layout) => layout.IsFlat
        ? $"{tensorKey}@flat{layout.FlatOffset}"
        : $"{tensorKey}@{string.Join(',', layout.Offsets!)}";
}
