using System.Buffers;
using System.Buffers.Binary;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Reads byte ranges of a block-mapped tensor (docs/compression.md#block-reuse) from wherever its blocks are: its own entry
/// and the earlier checkpoints' entries its map names, which the manifest must list among its shards. Each read covers whole
/// blocks, checks every block against the hash its source stores, and copies the part asked for into the destination.
/// Blocks that lie close together in one source are read together (gaps up to <see cref="MaxGapBytes"/>), in reads of at
/// most <see cref="MaxReadBytes"/> that draw on <see cref="ReadBufferBudget.Shared"/>.
/// </summary>
public sealed class BlockTensorReader
{
    /// <summary>The largest gap of unneeded blocks that one read spans rather than two.</summary>
    public const int MaxGapBytes = 64 << 10;

    /// <summary>The longest read of blocks, also the largest buffer one read takes (a single larger block is read alone).</summary>
    public const int MaxReadBytes = 8 << 20;

    private readonly ICheckpointStore _store;
    private readonly StoredChunk _entry;
    private readonly Lazy<Task<BlockSources>> _sources;
    private long _bytesRead;

    /// <summary>Consecutive blocks of one run: <see cref="Blocks"/> blocks from <see cref="FirstBlock"/>, in slots from <see cref="FirstSlot"/>.</summary>
    private readonly record struct Segment(int FirstBlock, int Blocks, int FirstSlot);

    /// <summary>Segments of one source read together: slots <see cref="FirstSlot"/> up to the last segment's end.</summary>
    private sealed record Read(int Source, int FirstSlot, List<Segment> Segments)
    {
        public int EndSlot => Segments[^1].FirstSlot + Segments[^1].Blocks;
    }

    /// <param name="store">the store holding the checkpoint</param>
    /// <param name="checkpointKey">the checkpoint's key</param>
    /// <param name="manifest">its manifest, which lists every shard the map names</param>
    /// <param name="headers">the checkpoint's shard headers, shared by the readers of one load</param>
    /// <param name="entry">the block-mapped tensor (or chunk) and its index entry</param>
    public BlockTensorReader(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, ShardHeaders headers, StoredChunk entry)
    {
        if (entry.Info.Encoding != BlockMap.Encoding) throw new ArgumentException($"'{entry.Key}' is not block-mapped.", nameof(entry));
        _store = store;
        _entry = entry;
        // Shared by every range read of the tensor: not tied to one caller's cancellation.
        _sources = new Lazy<Task<BlockSources>>(() => BlockSources.ResolveAsync(store, checkpointKey, manifest, headers, entry, CancellationToken.None));
    }

    /// <summary>Bytes of blocks and their hashes read from the store so far (the map's own reads not counted).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead);

    /// <summary>A <see cref="TensorRangeReader"/>: fills <paramref name="destination"/> with the tensor's bytes from <paramref name="offset"/> on.</summary>
    public async Task ReadAsync(Memory<byte> destination, long offset, CancellationToken ct)
    {
        if (destination.Length == 0) return;
        var (map, places) = await _sources.Value.WaitAsync(ct).ConfigureAwait(false);
        var end = offset + destination.Length;
        if (offset < 0 || end > map.RawLength) throw new ArgumentOutOfRangeException(nameof(offset), offset, $"'{_entry.Key}' has {map.RawLength} bytes; asked for [{offset}, {end})");
        var reads = Plan(map, (int)(offset / map.BlockBytes), (int)((end - 1) / map.BlockBytes));
        await Parallel.ForEachAsync(reads, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
            (read, token) => new ValueTask(ReadBlocksAsync(map, places[read.Source], read, destination, offset, token))).ConfigureAwait(false);
    }

    /// <summary>The reads that cover blocks <paramref name="first"/> to <paramref name="last"/>: per source, segments merged while the gaps stay small.</summary>
    private static List<Read> Plan(BlockMap map, int first, int last)
    {
        var maxGapSlots = MaxGapBytes / map.BlockBytes;
        var maxSlots = Math.Max(1, MaxReadBytes / map.BlockBytes);
        var reads = new List<Read>();
        var open = new Dictionary<int, Read>();
        for (var r = map.RunOf(first); r < map.Runs.Length && map.Runs[r].FirstBlock <= last; r++)
        {
            var run = map.Runs[r];
            var from = Math.Max(run.FirstBlock, first);
            var to = Math.Min(run.FirstBlock + run.Blocks - 1, last);
            var segment = new Segment(from, to - from + 1, run.FirstSlot + (from - run.FirstBlock));
            if (open.TryGetValue(run.SourceIndex, out var read) && segment.FirstSlot >= read.EndSlot && segment.FirstSlot - read.EndSlot <= maxGapSlots
                && segment.FirstSlot + segment.Blocks - read.FirstSlot <= maxSlots)
            {
                read.Segments.Add(segment);
                continue;
            }
            // A segment longer than one read is split.
            for (var done = 0; done < segment.Blocks; done += maxSlots)
            {
                var part = new Segment(segment.FirstBlock + done, Math.Min(maxSlots, segment.Blocks - done), segment.FirstSlot + done);
                reads.Add(open[run.SourceIndex] = new Read(run.SourceIndex, part.FirstSlot, [part]));
            }
        }
        return reads;
    }

    /// <summary>One read of a source's hashes and blocks; each block checked, then the part of it asked for copied out.</summary>
    private async Task ReadBlocksAsync(BlockMap map, BlockSources.Place place, Read read, Memory<byte> destination, long offset, CancellationToken ct)
    {
        var lastBlock = read.Segments[^1].FirstBlock + read.Segments[^1].Blocks - 1;
        var slots = read.EndSlot - read.FirstSlot;
        var payloadLength = (long)(slots - 1) * map.BlockBytes + map.BlockLength(lastBlock);
        var payloadAt = place.Source.PayloadAt + (long)read.FirstSlot * map.BlockBytes;
        var hashesAt = place.Source.HashesAt + (long)read.FirstSlot * BlockMap.HashBytes;
        if (payloadAt + payloadLength > place.Shard.Bytes || hashesAt + (long)slots * BlockMap.HashBytes > place.Shard.Bytes)
            throw new CheckpointFormatException(place.ShardKey, BlockMap.Encoding, $"tensor '{_entry.Key}': slots {read.FirstSlot} to {read.EndSlot} lie beyond the shard's {place.Shard.Bytes} bytes");
        var bufferBytes = payloadLength + (long)slots * BlockMap.HashBytes;
        using var lease = await ReadBufferBudget.Shared.AcquireAsync(Math.Min(bufferBytes, ReadBufferBudget.Shared.Capacity), ct).ConfigureAwait(false);
        var payload = ArrayPool<byte>.Shared.Rent((int)payloadLength);
        var hashes = ArrayPool<byte>.Shared.Rent(slots * BlockMap.HashBytes);
        try
        {
            await _store.ReadRangesAsync(place.ShardKey, [(hashesAt, hashes.AsMemory(0, slots * BlockMap.HashBytes)), (payloadAt, payload.AsMemory(0, (int)payloadLength))], ct).ConfigureAwait(false);
            Interlocked.Add(ref _bytesRead, bufferBytes);
            var end = offset + destination.Length;
            foreach (var segment in read.Segments)
            {
                for (var i = 0; i < segment.Blocks; i++)
                {
                    var block = segment.FirstBlock + i;
                    var at = segment.FirstSlot + i - read.FirstSlot;
                    var bytes = payload.AsSpan(at * map.BlockBytes, map.BlockLength(block));
                    var expected = BinaryPrimitives.ReadUInt64LittleEndian(hashes.AsSpan(at * BlockMap.HashBytes));
                    if (BlockHasher.Of(bytes) != expected)
                        throw new CheckpointFormatException(place.ShardKey, "block hash", $"tensor '{_entry.Key}': block {block} (slot {segment.FirstSlot + i}) does not match the hash stored beside it");
                    var blockStart = (long)block * map.BlockBytes;
                    var from = Math.Max(blockStart, offset);
                    var to = Math.Min(blockStart + bytes.Length, end);
                    bytes.Slice((int)(from - blockStart), (int)(to - from)).CopyTo(destination.Span[(int)(from - offset)..]);
                }
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(payload);
            ArrayPool<byte>.Shared.Return(hashes);
        }
    }
}
