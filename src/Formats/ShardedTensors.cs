using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>Turns a rank's tensors and their declared layouts into chunks, and chunks into the manifest's sharded section.</summary>
public static class ShardedTensors
{
    /// <summary>
    /// The chunk to write for a tensor held as <paramref name="layout"/>: a part, even when it is every element (a rank
    /// that holds all of a tensor whose other parts are empty saves it as the one chunk, so that every rank's list of whole
    /// tensors stays the same). A slice with no element is not written; a tensor with no element at all stays whole (in
    /// its global shape, alike on every rank).
    /// </summary>
    public static NamedTensor? Chunk(string key, ITensorSource local, TensorLayout layout)
    {
        if (!local.Shape.SequenceEqual(layout.LocalShape))
            throw new ArgumentException($"Tensor '{key}' is [{string.Join(", ", local.Shape)}], but its layout {layout} holds [{string.Join(", ", layout.LocalShape)}].");
        if (layout.GlobalElements == 0) return new NamedTensor(key, new NoElements(local.DType, layout.GlobalShape));
        if (layout.LocalElements == 0) return null;
        return new NamedTensor(TensorChunk.KeyFor(key, layout), local) { Chunk = new ChunkOf(key, layout) };
    }

    /// <summary>Replaces each tensor that <paramref name="layouts"/> declares a part of (by state path) with its chunk.</summary>
    public static List<NamedTensor> Apply(IReadOnlyList<NamedTensor> tensors, Func<string, TensorLayout?>? layouts)
    {
        if (layouts is null) return [.. tensors];
        var result = new List<NamedTensor>(tensors.Count);
        foreach (var t in tensors)
        {
            if (layouts(t.Key) is not { } layout) result.Add(t);
            else if (Chunk(t.Key, t.Source, layout) is { } chunk) result.Add(chunk);
        }
        return result;
    }

    /// <summary>The sharded section for the chunks among <paramref name="tensors"/>, by sharded tensor key in first-seen order.</summary>
    public static Dictionary<string, ShardedTensorInfo> Describe(IEnumerable<NamedTensor> tensors)
    {
        var sharded = new Dictionary<string, (string DType, long[] Shape, List<TensorChunk> Chunks)>(StringComparer.Ordinal);
        foreach (var t in tensors)
        {
            if (t.Chunk is not { } chunk) continue;
            if (!sharded.TryGetValue(chunk.TensorKey, out var info))
                sharded[chunk.TensorKey] = info = (t.Source.DType.Name(), chunk.Layout.GlobalShape, []);
            if (!info.Shape.SequenceEqual(chunk.Layout.GlobalShape) || info.DType != t.Source.DType.Name())
                throw new ArgumentException($"Chunks of '{chunk.TensorKey}' disagree on its dtype or global shape.");
            info.Chunks.Add(TensorChunk.Of(t.Key, chunk.Layout));
        }
        return sharded.ToDictionary(s => s.Key, s => new ShardedTensorInfo(s.Value.DType, s.Value.Shape, s.Value.Chunks), StringComparer.Ordinal);
    }

    /// <summary>
    /// Index entries standing in for tensors not yet written (dtype and shape are what <see cref="ShardedTensorCheck"/> reads),
    /// so that a layout that leaves elements out is refused before any byte is written.
    /// </summary>
    public static IReadOnlyDictionary<string, TensorInfo> Unwritten(IEnumerable<NamedTensor> tensors) =>
        tensors.ToDictionary(t => t.Key, t => new TensorInfo(0, t.Source.DType.Name(), t.Source.Shape, [0, t.ByteLength]), StringComparer.Ordinal);

    /// <summary>The leaves of <see cref="StateTree.Flatten"/> for a <see cref="TensorParts"/> at <paramref name="path"/>.</summary>
    internal static IEnumerable<NamedTensor> Leaves(string path, TensorParts parts)
    {
        var written = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var (layout, source) in parts.Parts)
        {
            if (!layout.GlobalShape.SequenceEqual(parts.GlobalShape))
                throw new ArgumentException($"A part of '{path}' is laid out in [{string.Join(", ", layout.GlobalShape)}], the tensor is [{string.Join(", ", parts.GlobalShape)}].");
            if (Chunk(path, source, layout) is not { } chunk) continue;
            // The same part twice (replicas of a slice, or of an empty tensor) is written once; another part starting there overlaps it.
            if (written.TryGetValue(chunk.Key, out var shape))
            {
                if (!shape.SequenceEqual(chunk.Source.Shape)) throw new ArgumentException($"Parts of '{path}' overlap at {layout}.");
                continue;
            }
            written.Add(chunk.Key, chunk.Source.Shape);
            yield return chunk;
        }
    }

    /// <summary>A tensor with no element: nothing to write but its dtype and shape.</summary>
    private sealed class NoElements(TensorDType dtype, long[] shape) : ITensorSource
    {
        public TensorDType DType { get; } = dtype;
        public long[] Shape { get; } = shape;
        public void WriteTo(Stream destination) { }
    }
}
