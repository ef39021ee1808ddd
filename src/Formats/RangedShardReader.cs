using System.Buffers;
using System.IO.Hashing;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Reads one safetensors shard from a remote store as parallel ranges straight into the tensors' memory (no intermediate
/// buffers), hashing each range as it lands; the ranges' CRC-64s are combined in file order (<see cref="Crc64Concatenation"/>)
/// and checked against the shard's checksum once every range is in. The same checks as <see cref="SafetensorsShardReader"/>:
/// the header is parsed with its budgets, the tensors must cover the data section exactly, and a shard whose checksum
/// does not match fails the read (its targets hold bytes that were never verified: callers stage them).
/// </summary>
public static class RangedShardReader
{
    /// <summary>Bytes of the first request at most (and at most one range): the header of an ordinary shard, so that one request finds the tensors.</summary>
    private const int FirstReadLimit = 64 << 10;

    /// <summary>
    /// Fills <paramref name="targetFor"/>'s targets (null: the bytes are read into a scratch buffer only to be hashed) and returns
    /// the shard's header. <paramref name="expectedLength"/> must be the object's length as the store reports it.
    /// </summary>
    public static async Task<SafetensorsHeader> ReadAsync(ICheckpointStore store, string key, long expectedLength, string? expectedChecksum,
        ParallelRangeReads plan, Func<SafetensorsEntry, ITensorTarget?> targetFor, IProgress<long>? progress, CancellationToken cancellationToken)
    {
        HeaderRead first;
        try
        {
            first = await ReadHeaderAsync(store, key, expectedLength, Math.Min(plan.RangeSize, FirstReadLimit), cancellationToken).ConfigureAwait(false);
        }
        catch (CheckpointFormatException) when (expectedChecksum is not null && expectedLength >= 8)
        {
            // A damaged header is reported as what it is, as the sequential reader does: a checksum mismatch, if the bytes differ.
            ShardChecksum.ThrowIfDiffers(key, await HashWholeAsync(store, key, expectedLength, plan, cancellationToken).ConfigureAwait(false), expectedChecksum);
            throw;
        }
        var header = first.Header;
        using var ranges = new ShardRanges(store, key, plan, header.DataStart, first.WholeObject);
        var tensors = header.Entries.Select(e => (Entry: e, Target: targetFor(e))).ToList();
        try
        {
            // Several tensors at once (small tensors alone would leave the pipe idle); ShardRanges bounds the requests per shard.
            await Parallel.ForEachAsync(tensors, new ParallelOptions { MaxDegreeOfParallelism = plan.InFlight, CancellationToken = cancellationToken }, async (tensor, token) =>
            {
                var start = header.DataStart + tensor.Entry.Begin;
                TensorRangeReader read = (destination, offset, c) => ranges.ReadAsync(destination, start + offset, c);
                if (tensor.Target is { } target) await target.FillAsync(read, token).ConfigureAwait(false);
                else await HashOnlyAsync(read, tensor.Entry.ByteLength, plan.RangeSize, token).ConfigureAwait(false);
                progress?.Report(tensor.Entry.ByteLength);
            }).ConfigureAwait(false);
        }
        catch (EndOfStreamException e)
        {
            throw new CheckpointFormatException(key, "length", $"the object ended before its recorded {expectedLength} bytes while being read (truncated or replaced)", e);
        }
        if (expectedChecksum is not null) ShardChecksum.ThrowIfDiffers(key, ranges.Combine(first.Crc, expectedLength), expectedChecksum);
        return header;
    }

    /// <summary>The parsed header, the CRC-64 of its bytes, and the whole object when the first request already held all of it (a small shard).</summary>
    private sealed record HeaderRead(SafetensorsHeader Header, ulong Crc, byte[]? WholeObject);

    private static async Task<HeaderRead> ReadHeaderAsync(ICheckpointStore store, string key, long length, int firstRead, CancellationToken ct)
    {
        SafetensorsHeader.CheckFileHoldsPrefix(length, key);
        var first = new byte[(int)Math.Min(length, Math.Max(firstRead, 8))];
        await store.ReadRangeAsync(key, 0, first, ct).ConfigureAwait(false);
        var headerLength = SafetensorsHeader.HeaderLength(first.AsSpan(0, 8), length, key);
        var bytes = first;
        if (8 + headerLength > first.Length)
        {
            bytes = new byte[8 + headerLength];
            first.CopyTo(bytes, 0);
            await store.ReadRangeAsync(key, first.Length, bytes.AsMemory(first.Length), ct).ConfigureAwait(false);
        }
        var headerBytes = bytes.AsSpan(0, 8 + headerLength);
        return new HeaderRead(SafetensorsHeader.Parse(headerBytes[8..], length, key), Crc64.HashToUInt64(headerBytes), first.Length == length ? first : null);
    }

    /// <summary>The CRC-64 of the whole object, read as ranges into pooled buffers.</summary>
    private static async Task<ulong> HashWholeAsync(ICheckpointStore store, string key, long length, ParallelRangeReads plan, CancellationToken ct)
    {
        using var ranges = new ShardRanges(store, key, plan, dataStart: 0, wholeObject: null);
        await HashOnlyAsync(ranges.ReadAsync, length, plan.RangeSize, ct).ConfigureAwait(false);
        return ranges.Combine(initialCrc: 0, length);
    }

    /// <summary>Bytes no target wants (a verify) pass through one pooled buffer per range, only to be hashed.</summary>
    private static async Task HashOnlyAsync(TensorRangeReader read, long length, int rangeSize, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, rangeSize));
        try
        {
            for (long done = 0; done < length; done += buffer.Length)
            {
                var size = (int)Math.Min(buffer.Length, length - done);
                await read(buffer.AsMemory(0, size), done, ct).ConfigureAwait(false);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// The ranges of one object after its header: fetched at most <see cref="ParallelRangeReads.InFlight"/> at once (or copied
    /// from the object already in memory), each hashed as soon as it is in, the hashes combined in file order at the end.
    /// </summary>
    private sealed class ShardRanges(ICheckpointStore store, string key, ParallelRangeReads plan, long dataStart, byte[]? wholeObject) : IDisposable
    {
        private readonly SemaphoreSlim _inFlight = new(plan.InFlight);
        private readonly List<(long Offset, long Length, ulong Crc)> _hashes = [];

        /// <summary>Fills <paramref name="destination"/> with the object's bytes from <paramref name="offset"/>, as ranges of at most the plan's size.</summary>
        public Task ReadAsync(Memory<byte> destination, long offset, CancellationToken ct)
        {
            var rangeSize = plan.RangeSize;
            var count = (int)((destination.Length + (long)rangeSize - 1) / rangeSize);
            return Task.WhenAll(Enumerable.Range(0, count).Select(i =>
                ReadOneAsync(destination.Slice(i * rangeSize, Math.Min(rangeSize, destination.Length - i * rangeSize)), offset + (long)i * rangeSize, ct)));
        }

        private async Task ReadOneAsync(Memory<byte> destination, long offset, CancellationToken ct)
        {
            if (wholeObject is not null)
            {
                wholeObject.AsMemory((int)offset, destination.Length).CopyTo(destination);
            }
            else
            {
                await _inFlight.WaitAsync(ct).ConfigureAwait(false);
                try
                {
                    await store.ReadRangeAsync(key, offset, destination, ct).ConfigureAwait(false);
                }
                finally
                {
                    _inFlight.Release();
                }
            }
            var crc = Crc64.HashToUInt64(destination.Span);
            lock (_hashes) _hashes.Add((offset, destination.Length, crc));
        }

        /// <summary>The CRC-64 of the object: <paramref name="initialCrc"/> is that of its bytes before the ranges (the header).</summary>
        public ulong Combine(ulong initialCrc, long fileLength)
        {
            var crc = initialCrc;
            var cursor = dataStart;
            foreach (var (offset, length, rangeCrc) in _hashes.OrderBy(r => r.Offset))
            {
                // The header's coverage check makes the tensors tile the data section; this guards the reader itself.
                if (offset != cursor) throw new InvalidOperationException($"{key}: ranges read do not tile the shard (gap or overlap at {cursor})");
                crc = Crc64Concatenation.Append(crc, rangeCrc, length);
                cursor += length;
            }
            if (cursor != fileLength) throw new InvalidOperationException($"{key}: ranges read end at {cursor}, the shard at {fileLength}");
            return crc;
        }

        public void Dispose() => _inFlight.Dispose();
    }
}
