using System.Buffers;
using System.Collections.Concurrent;
using System.IO.Hashing;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Reads one safetensors shard of a store through ranged reads on every core: the header first, then each tensor's bytes straight
/// into where they go (<see cref="ITensorTarget.FillAsync"/>), in pieces of at most <see cref="PieceBytes"/> read in parallel.
/// Each piece's CRC-64 is computed as it lands, while it is still in the core's cache, and the file's checksum is joined from
/// the pieces' (<see cref="Crc64Concatenation"/>): every byte is read once, from the disk or the page cache into its final
/// memory, and checked there. The caller's targets are its own fresh memory, so a failed check changes nothing of theirs that
/// matters (the model is filled only after every shard verified). Errors are <see cref="SafetensorsShardReader"/>'s.
/// </summary>
public static class RangedShardReader
{
    /// <summary>The most bytes one ranged read fetches: large enough for few system calls or requests, small enough to spread a tensor over every core.</summary>
    public const int PieceBytes = 8 << 20;

    /// <summary>
    /// Reads shard <paramref name="key"/> of <paramref name="store"/> (<paramref name="expectedLength"/> bytes, checksum
    /// <paramref name="expectedChecksum"/> unless null). For each tensor, <paramref name="targetFor"/> returns where its bytes go,
    /// or null to only check them. Up to <paramref name="parallelism"/> pieces of at most <paramref name="pieceBytes"/> are in flight at once.
    /// </summary>
    public static async Task<SafetensorsHeader> ReadAsync(ICheckpointStore store, string key, long expectedLength, string? expectedChecksum,
        Func<SafetensorsEntry, ITensorTarget?> targetFor, IProgress<long>? progress, int parallelism, CancellationToken cancellationToken,
        int pieceBytes = PieceBytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(pieceBytes, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(parallelism, 1);
        SafetensorsHeader.CheckFileHoldsPrefix(expectedLength, key);
        var pieces = new ConcurrentBag<(long Offset, long Length, ulong Crc)>();
        using var inFlight = new SemaphoreSlim(parallelism, parallelism);
        SafetensorsHeader header;
        try
        {
            header = await ReadHeaderAsync(store, key, expectedLength, pieces, cancellationToken).ConfigureAwait(false);
        }
        catch (CheckpointFormatException) when (expectedChecksum is not null)
        {
            // A damaged header is reported as what it is: a checksum mismatch, if the bytes differ.
            pieces.Clear();
            await ReadPiecesAsync(store, key, 0, expectedLength, destination: null, pieces, inFlight, pieceBytes, cancellationToken).ConfigureAwait(false);
            CheckChecksum(pieces, key, expectedLength, expectedChecksum);
            throw;
        }
        var fills = header.Entries.Select(entry => (Entry: entry, Target: targetFor(entry))).ToList();
        await Parallel.ForEachAsync(fills, new ParallelOptions { MaxDegreeOfParallelism = parallelism, CancellationToken = cancellationToken }, async (fill, token) =>
        {
            var start = header.DataStart + fill.Entry.Begin;
            if (fill.Target is null) await ReadPiecesAsync(store, key, start, fill.Entry.ByteLength, destination: null, pieces, inFlight, pieceBytes, token).ConfigureAwait(false);
            else await fill.Target.FillAsync((destination, offset, innerToken) =>
                ReadPiecesAsync(store, key, start + offset, destination.Length, destination, pieces, inFlight, pieceBytes, innerToken), token).ConfigureAwait(false);
            progress?.Report(fill.Entry.ByteLength);
        }).ConfigureAwait(false);
        if (expectedChecksum is not null) CheckChecksum(pieces, key, expectedLength, expectedChecksum);
        return header;
    }

    /// <summary>The header, parsed and validated; its bytes are the file's first piece.</summary>
    private static async Task<SafetensorsHeader> ReadHeaderAsync(ICheckpointStore store, string key, long fileLength,
        ConcurrentBag<(long, long, ulong)> pieces, CancellationToken cancellationToken)
    {
        var prefix = new byte[8];
        await ReadAsync(store, key, 0, prefix, fileLength, cancellationToken).ConfigureAwait(false);
        var bytes = new byte[8 + SafetensorsHeader.HeaderLength(prefix, fileLength, key)];
        prefix.CopyTo(bytes, 0);
        await ReadAsync(store, key, 8, bytes.AsMemory(8), fileLength, cancellationToken).ConfigureAwait(false);
        pieces.Add((0, bytes.Length, Crc64.HashToUInt64(bytes)));
        return SafetensorsHeader.Parse(bytes.AsSpan(8), fileLength, key);
    }

    /// <summary>
    /// Reads <paramref name="length"/> bytes from <paramref name="fileOffset"/> on in pieces, in parallel, each piece's CRC recorded:
    /// into <paramref name="destination"/>, or, when it is null (bytes only checked), through pooled buffers. At most
    /// <paramref name="inFlight"/>'s count of pieces are read at once across the whole shard.
    /// </summary>
    private static Task ReadPiecesAsync(ICheckpointStore store, string key, long fileOffset, long length, Memory<byte>? destination,
        ConcurrentBag<(long, long, ulong)> pieces, SemaphoreSlim inFlight, int pieceBytes, CancellationToken cancellationToken)
    {
        var count = (int)((length + pieceBytes - 1) / pieceBytes);
        return Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, count), CancellationToken = cancellationToken }, async (index, token) =>
        {
            var start = (long)index * pieceBytes;
            var pieceLength = (int)Math.Min(pieceBytes, length - start);
            await inFlight.WaitAsync(token).ConfigureAwait(false);
            var scratch = destination is null ? ArrayPool<byte>.Shared.Rent(pieceLength) : null; // rented in flight only: memory stays bounded
            var piece = scratch?.AsMemory(0, pieceLength) ?? destination!.Value.Slice((int)start, pieceLength);
            try
            {
                await ReadAsync(store, key, fileOffset + start, piece, long.MaxValue, token).ConfigureAwait(false);
                pieces.Add((fileOffset + start, pieceLength, Crc64.HashToUInt64(piece.Span)));
            }
            finally
            {
                inFlight.Release();
                if (scratch is not null) ArrayPool<byte>.Shared.Return(scratch);
            }
        });
    }

    /// <summary>A ranged read whose end past the file (it shrank since its length was checked) is a length error, as a streamed read's would be.</summary>
    private static async Task ReadAsync(ICheckpointStore store, string key, long offset, Memory<byte> destination, long fileLength, CancellationToken cancellationToken)
    {
        if (offset + destination.Length > fileLength)
            throw new CheckpointFormatException(key, "length", $"expected {fileLength} bytes, the read at {offset} needs {offset + destination.Length}");
        try
        {
            await store.ReadRangeAsync(key, offset, destination, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is EndOfStreamException or StoreObjectNotFoundException)
        {
            throw new CheckpointFormatException(key, "length", $"the shard ended or went away during the read at {offset} ({e.Message})", e);
        }
    }

    /// <summary>The pieces must cover the file exactly, in order; their joined CRC must be the one the manifest records.</summary>
    private static void CheckChecksum(ConcurrentBag<(long Offset, long Length, ulong Crc)> pieces, string key, long expectedLength, string expected)
    {
        var ordered = pieces.OrderBy(p => p.Offset).ToList();
        long covered = 0;
        foreach (var piece in ordered)
        {
            if (piece.Offset != covered) throw new InvalidOperationException($"{key}: pieces read do not cover the file at {covered} (a reader bug)");
            covered += piece.Length;
        }
        if (covered != expectedLength) throw new CheckpointFormatException(key, "length", $"expected {expectedLength} bytes, found {covered}");
        var actual = ShardChecksum.Format(Crc64Concatenation.Join(ordered.Select(p => (p.Crc, p.Length))));
        if (!string.Equals(actual, expected, StringComparison.Ordinal))
            throw new CheckpointFormatException(key, "checksum", $"manifest records {expected}, file has {actual}");
    }
}
