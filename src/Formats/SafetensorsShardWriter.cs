namespace Checkpointing.Formats;

/// <summary>
/// Streams tensors into one safetensors shard. Memory stays bounded by what each
/// <see cref="ITensorSource"/> holds: bytes go from tensor memory to the stream directly.
/// </summary>
public static class SafetensorsShardWriter
{
    /// <summary>
    /// Orders tensors by element size (largest first), then key, and assigns contiguous offsets:
    /// with the data section 8-byte aligned, every tensor starts aligned to its element size.
    /// </summary>
    public static IReadOnlyList<SafetensorsEntry> Layout(IEnumerable<NamedTensor> tensors)
    {
        long cursor = 0;
        var entries = new List<SafetensorsEntry>();
        foreach (var t in tensors.OrderByDescending(t => t.Source.DType.ElementSize()).ThenBy(t => t.Key, StringComparer.Ordinal))
        {
            var length = t.ByteLength;
            entries.Add(new SafetensorsEntry(t.Key, t.Source.DType, t.Source.Shape, cursor, cursor + length));
            cursor += length;
        }
        return entries;
    }

    /// <summary>
    /// Writes header and data; returns the layout written. <paramref name="progress"/> gets bytes as each tensor completes:
    /// those it wrote, or for a key in <paramref name="reportAs"/> the bytes given there (an encoded tensor's decoded length).
    /// </summary>
    public static IReadOnlyList<SafetensorsEntry> Write(Stream destination, IReadOnlyList<NamedTensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, IProgress<long>? progress = null, IReadOnlyDictionary<string, long>? reportAs = null)
    {
        var duplicates = tensors.GroupBy(t => t.Key, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (duplicates is not null) throw new ArgumentException($"tensor key '{duplicates.Key}' appears twice in one shard", nameof(tensors));
        var layout = Layout(tensors);
        destination.Write(SafetensorsHeader.Build(layout, metadata));
        var byKey = tensors.ToDictionary(t => t.Key, StringComparer.Ordinal);
        // Callers usually hand in the hashing stream already: count through it rather than hashing every byte twice.
        var counter = destination as ChecksummingWriteStream ?? new ChecksummingWriteStream(destination);
        foreach (var entry in layout)
        {
            var before = counter.BytesWritten;
            byKey[entry.Key].Source.WriteTo(counter);
            var written = counter.BytesWritten - before;
            if (written != entry.ByteLength)
                throw new InvalidOperationException($"tensor '{entry.Key}' ({entry.DType}[{string.Join(", ", entry.Shape)}]) wrote {written} bytes, expected {entry.ByteLength}");
            progress?.Report(reportAs?.GetValueOrDefault(entry.Key, written) ?? written);
        }
        return layout;
    }
}
