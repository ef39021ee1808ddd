using System.IO.Hashing;

namespace Checkpointing.Formats;

/// <summary>A tensor to be written under a key.</summary>
public sealed record NamedTensor(string Key, ITensorSource Source)
{
    /// <summary>Set when these bytes are a chunk of a sharded tensor (DESIGN.md §11); <see cref="Key"/> is then the chunk's own key.</summary>
    public ChunkOf? Chunk { get; init; }

    public long ByteLength => TensorDTypes.ByteLength(Source.DType, Source.Shape);
}

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

    /// <summary>Writes header and data; returns the layout written. <paramref name="progress"/> gets bytes as each tensor completes.</summary>
    public static IReadOnlyList<SafetensorsEntry> Write(Stream destination, IReadOnlyList<NamedTensor> tensors,
        IReadOnlyDictionary<string, string>? metadata = null, IProgress<long>? progress = null)
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
            progress?.Report(written);
        }
        return layout;
    }
}

/// <summary>Reads one safetensors shard sequentially, verifying its length and checksum as the bytes pass.</summary>
public static class SafetensorsShardReader
{
    /// <summary>
    /// Reads <paramref name="stream"/> (the whole shard) from start to end. For each tensor, <paramref name="targetFor"/>
    /// returns where its bytes go, or null to skip them (they are still hashed). Throws
    /// <see cref="CheckpointFormatException"/> naming the shard and the failed check.
    /// </summary>
    public static SafetensorsHeader Read(Stream stream, string source, long expectedLength, string? expectedChecksum,
        Func<SafetensorsEntry, ITensorTarget?> targetFor, IProgress<long>? progress = null)
    {
        var crc = new Crc64();
        using var hashing = new HashingReadStream(stream, crc);
        SafetensorsHeader header;
        try
        {
            header = SafetensorsHeader.Read(hashing, expectedLength, source);
        }
        catch (CheckpointFormatException) when (expectedChecksum is not null)
        {
            // A damaged header is reported as what it is: a checksum mismatch, if the bytes differ.
            hashing.Drain();
            CheckChecksum(hashing, crc, source, expectedLength, expectedChecksum);
            throw;
        }
        foreach (var entry in header.Entries)
        {
            var bounded = new BoundedReadStream(hashing, entry.ByteLength);
            try
            {
                var target = targetFor(entry);
                target?.Fill(bounded);
                bounded.SkipRest();
            }
            catch (EndOfStreamException e)
            {
                throw new CheckpointFormatException(source, "length", $"file ended inside tensor '{entry.Key}' after {hashing.BytesRead} of {expectedLength} bytes (truncated)", e);
            }
            progress?.Report(entry.ByteLength);
        }
        var trailing = hashing.Drain();
        if (trailing > 0 || hashing.BytesRead != expectedLength)
            throw new CheckpointFormatException(source, "length", $"expected {expectedLength} bytes, found {hashing.BytesRead}");
        if (expectedChecksum is not null) CheckChecksum(hashing, crc, source, expectedLength, expectedChecksum);
        return header;
    }

    private static void CheckChecksum(HashingReadStream hashing, Crc64 crc, string source, long expectedLength, string expected)
    {
        if (hashing.BytesRead != expectedLength)
            throw new CheckpointFormatException(source, "length", $"expected {expectedLength} bytes, found {hashing.BytesRead} (truncated or appended)");
        var actual = ShardChecksum.Format(crc.GetCurrentHashAsUInt64());
        if (!string.Equals(actual, expected, StringComparison.Ordinal))
            throw new CheckpointFormatException(source, "checksum", $"manifest records {expected}, file has {actual}");
    }
}
