namespace Checkpointing.Formats;

/// <summary>
/// A bare <c>.safetensors</c> file, as pretrained weights are published: flat tensor names, optional
/// string <c>__metadata__</c>. Every header rule and budget of <see cref="SafetensorsHeader"/> applies, so
/// the tensors read never exceed the file's own size.
/// </summary>
public static class SafetensorsFile
{
    /// <summary>The file extension, <c>.safetensors</c>.</summary>
    public const string Extension = ".safetensors";

    /// <summary>The header key of the file's string metadata, and the checkpoint key <see cref="ReadCheckpoint"/> returns it under.</summary>
    public const string MetadataKey = "__metadata__";

    /// <summary>Whether <paramref name="path"/> ends in <see cref="Extension"/>, in any casing.</summary>
    public static bool HasExtension(string path) => Path.GetExtension(path).Equals(Extension, StringComparison.OrdinalIgnoreCase);

    /// <summary>Reads every tensor (in file order) through <paramref name="allocate"/>, and the file's metadata.</summary>
    public static (OrderedDictionary<string, object?> Tensors, IReadOnlyDictionary<string, string> Metadata) Read(string path, TensorAllocator allocate)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        var tensors = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        var header = SafetensorsShardReader.Read(stream, path, stream.Length, expectedChecksum: null, entry =>
        {
            var (value, target) = allocate(entry.Key, entry.DType, entry.Shape);
            tensors.Add(entry.Key, value);
            return target;
        });
        if (header.Metadata.GetValueOrDefault("format") == ShardEncoding.Format)
            throw new CheckpointFormatException(path, "encoding", "this is a shard of a compressed native checkpoint, whose tensors it holds encoded: load the checkpoint's folder, or make its shards plain with `ckpt compact --decompress`");
        return (tensors, header.Metadata);
    }

    /// <summary>
    /// The file as a checkpoint, normalized as fvcore's loader does for a file without a "model" key:
    /// <c>{"model": tensors}</c>, plus <c>"__metadata__"</c> (a string dict) when the file has metadata.
    /// </summary>
    public static OrderedDictionary<string, object?> ReadCheckpoint(string path, TensorAllocator allocate, string modelKey = "model")
    {
        var (tensors, metadata) = Read(path, allocate);
        var checkpoint = new OrderedDictionary<string, object?>(StringComparer.Ordinal) { [modelKey] = tensors };
        if (metadata.Count > 0) checkpoint[MetadataKey] = MetadataTree(metadata);
        return checkpoint;
    }

    /// <summary>
    /// The <c>__metadata__</c> to write for <paramref name="checkpoint"/>: its "__metadata__" entry when that is a dict of
    /// strings (as <see cref="ReadCheckpoint"/> returns it), else none.
    /// </summary>
    public static IReadOnlyDictionary<string, string>? MetadataOf(IReadOnlyDictionary<string, object?> checkpoint)
    {
        if (checkpoint.GetValueOrDefault(MetadataKey) is not IEnumerable<KeyValuePair<string, object?>> entries) return null;
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in entries)
        {
            if (value is not string text) return null;
            metadata.Add(key, text);
        }
        return metadata;
    }

    private static OrderedDictionary<string, object?> MetadataTree(IReadOnlyDictionary<string, string> metadata)
    {
        var tree = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in metadata) tree.Add(key, value);
        return tree;
    }
}
