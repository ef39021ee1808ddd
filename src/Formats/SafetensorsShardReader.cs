using System.IO.Hashing;

namespace Checkpointing.Formats;

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
