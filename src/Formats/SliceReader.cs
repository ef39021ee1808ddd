using System.Buffers;
using System.Collections.Concurrent;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Reads the elements a destination layout needs of one stored tensor (docs/format.md#sharded-tensors-and-resharding): for each chunk that overlaps it,
/// only the overlapping byte ranges, coalesced when they are close in the shard file (within <see cref="MaxGapBytes"/>,
/// and at most 5% more bytes than needed in all), written straight into the destination when the range is one run,
/// else through a pooled buffer of at most <see cref="MaxBufferBytes"/>. A chunk read whole is checked against its
/// content hash when the manifest records one; parts of a chunk cannot be (<c>ckpt verify</c> reads everything).
/// </summary>
public sealed class SliceReader
{
    /// <summary>The largest gap (bytes) between two needed ranges of a chunk that one read spans rather than two.</summary>
    public const int MaxGapBytes = 4096;

    /// <summary>The longest merged read (bytes, 8 MiB), which is also the largest pooled buffer one range takes.</summary>
    public const int MaxBufferBytes = 8 << 20;

    /// <summary>Bytes one batch of a chunk's ranged reads buffers at most.</summary>
    public const int MaxBatchBytes = 4 * MaxBufferBytes;
    /// <summary>Runs one tensor's read may need; beyond it the layouts are refused (a hostile or absurd split).</summary>
    public const long MaxPieces = 16_000_000;

    private readonly ICheckpointStore _store;
    private readonly string _checkpointKey;
    private readonly CheckpointManifest _manifest;
    private readonly ShardHeaders _headers;
    private readonly StoredTensorChunks _tensor;
    private readonly int _elementSize;
    /// <summary>What to read, sorted by where it goes in the destination (chunks never overlap, so neither do these).</summary>
    private readonly Piece[] _pieces;
    private long _bytesRead;
    /// <summary>Encoded chunks decoded so far, by chunk index: kept while this reader lives, so that each is read and decoded once.</summary>
    private readonly ConcurrentDictionary<int, Lazy<Task<byte[]>>> _decoded = new();
    /// <summary>Readers of block-mapped chunks, by chunk index: each reads its map once.</summary>
    private readonly ConcurrentDictionary<int, BlockTensorReader> _blockReaders = new();

    private readonly record struct Piece(int Chunk, long SourceByte, long DestinationByte, long Bytes);

    /// <summary>Plans the reads of <paramref name="destination"/>'s elements of <paramref name="tensor"/>; nothing is read yet.</summary>
    /// <param name="store">the store holding the checkpoint</param>
    /// <param name="checkpointKey">the checkpoint's store key</param>
    /// <param name="manifest">the checkpoint's manifest, which names the chunks' shards</param>
    /// <param name="headers">the shards' headers, read once and shared by the readers of one load</param>
    /// <param name="tensor">the stored tensor and its chunks</param>
    /// <param name="destination">the part to read, in the stored tensor's global shape</param>
    /// <exception cref="InvalidDataException">The layout's global shape is not the stored tensor's, or the read would take more than <see cref="MaxPieces"/> pieces.</exception>
    public SliceReader(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, ShardHeaders headers, StoredTensorChunks tensor, TensorLayout destination)
    {
        if (!destination.GlobalShape.SequenceEqual(tensor.Shape))
            throw new InvalidDataException($"Tensor '{tensor.Key}' is [{string.Join(", ", tensor.Shape)}] in the checkpoint; the layout to load is {destination}.");
        _store = store;
        _checkpointKey = checkpointKey;
        _manifest = manifest;
        _headers = headers;
        _tensor = tensor;
        _elementSize = tensor.DType.ElementSize();
        var pieces = new List<Piece>();
        for (var c = 0; c < tensor.Chunks.Count; c++)
        {
            if (pieces.Count + tensor.Chunks[c].Layout.RunCount + destination.RunCount > MaxPieces)
                throw new InvalidDataException($"Loading {destination} of '{tensor.Key}' needs more than {MaxPieces} separate reads.");
            foreach (var shared in LayoutOverlap.Between(tensor.Chunks[c].Layout, destination))
                pieces.Add(new Piece(c, shared.SourceStart * _elementSize, shared.DestinationStart * _elementSize, shared.Length * _elementSize));
        }
        pieces.Sort((a, b) => a.DestinationByte.CompareTo(b.DestinationByte));
        _pieces = [.. pieces];
        BytesNeeded = destination.LocalElements * _elementSize;
    }

    /// <summary>Bytes of tensor data the destination holds.</summary>
    public long BytesNeeded { get; }

    /// <summary>Bytes read from the store so far (shard headers not counted).</summary>
    public long BytesRead => Interlocked.Read(ref _bytesRead) + _blockReaders.Values.Sum(reader => reader.BytesRead);

    /// <summary>A <see cref="TensorRangeReader"/>: fills <paramref name="destination"/> with the destination tensor's bytes from <paramref name="offset"/> on.</summary>
    public async Task ReadAsync(Memory<byte> destination, long offset, CancellationToken ct)
    {
        var end = offset + destination.Length;
        var first = FirstPieceEndingAfter(offset);
        var wanted = new List<Piece>();
        for (var i = first; i < _pieces.Length && _pieces[i].DestinationByte < end; i++)
        {
            var p = _pieces[i];
            var from = Math.Max(p.DestinationByte, offset);
            var to = Math.Min(p.DestinationByte + p.Bytes, end);
            wanted.Add(new Piece(p.Chunk, p.SourceByte + (from - p.DestinationByte), from - offset, to - from));
        }
        var covered = wanted.Sum(p => p.Bytes);
        if (covered != destination.Length)
            throw new CheckpointFormatException(_checkpointKey, "sharded tensors", $"the chunks of '{_tensor.Key}' hold {covered} of the {destination.Length} bytes asked for");
        await Parallel.ForEachAsync(Coalesce(wanted, (long)(0.05 * covered)), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = ct },
            (chunk, token) => new ValueTask(ReadChunkAsync(chunk.Index, chunk.Ranges, destination, token))).ConfigureAwait(false);
    }

    private int FirstPieceEndingAfter(long offset)
    {
        int lo = 0, hi = _pieces.Length;
        while (lo < hi)
        {
            var mid = (lo + hi) / 2;
            if (_pieces[mid].DestinationByte + _pieces[mid].Bytes <= offset) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    /// <summary>Per chunk, its pieces merged into reads while the gaps between them stay small and the waste within budget.</summary>
    private static List<(int Index, List<List<Piece>> Ranges)> Coalesce(List<Piece> pieces, long wasteBudget)
    {
        var chunks = new List<(int, List<List<Piece>>)>();
        foreach (var chunk in pieces.GroupBy(p => p.Chunk))
        {
            var ranges = new List<List<Piece>>();
            chunks.Add((chunk.Key, ranges));
            List<Piece>? current = null;
            long currentEnd = 0, currentStart = 0;
            foreach (var p in chunk.OrderBy(p => p.SourceByte))
            {
                var gap = p.SourceByte - currentEnd;
                if (current is not null && gap >= 0 && gap <= MaxGapBytes && gap <= wasteBudget && p.SourceByte + p.Bytes - currentStart <= MaxBufferBytes)
                {
                    current.Add(p);
                    wasteBudget -= gap;
                }
                else
                {
                    ranges.Add(current = [p]);
                    currentStart = p.SourceByte;
                }
                currentEnd = p.SourceByte + p.Bytes;
            }
        }
        return chunks;
    }

    /// <summary>
    /// One chunk's ranges in a few batched store calls: a range of one piece straight into the destination, a range of
    /// several into a pooled buffer that is then scattered. A batch buffers at most <see cref="MaxBatchBytes"/>, and only
    /// once <see cref="ReadBufferBudget.Shared"/> has room for it, so what all loads of the process buffer stays bounded.
    /// </summary>
    private async Task ReadChunkAsync(int chunkIndex, List<List<Piece>> ranges, Memory<byte> destination, CancellationToken ct)
    {
        var chunk = _tensor.Chunks[chunkIndex];
        var shardKey = StoreLayout.ShardKey(_checkpointKey, _manifest.Shards[chunk.Info.Shard]);
        if (chunk.Info.Encoding == BlockMap.Encoding)
        {
            await ReadBlockMappedAsync(chunkIndex, chunk, ranges, destination, ct).ConfigureAwait(false);
            return;
        }
        var fileStart = await _headers.DataStartAsync(chunk, ct).ConfigureAwait(false) + chunk.Info.DataOffsets[0];
        if (chunk.Info.Encoding == BytegroupCodec.Name)
        {
            // An encoded chunk decodes only whole: read and checked once, then every piece is copied out of it.
            var raw = await _decoded.GetOrAdd(chunkIndex, _ => new Lazy<Task<byte[]>>(() => ReadDecodedAsync(chunk, shardKey, fileStart))).Value.WaitAsync(ct).ConfigureAwait(false);
            foreach (var piece in ranges.SelectMany(range => range))
                raw.AsSpan((int)piece.SourceByte, (int)piece.Bytes).CopyTo(destination.Span.Slice((int)piece.DestinationByte, (int)piece.Bytes));
            return;
        }
        foreach (var batch in Batches(ranges))
        {
            var bufferedBytes = batch.Where(range => range.Count > 1).Sum(BufferLength);
            using var lease = await ReadBufferBudget.Shared.AcquireAsync(bufferedBytes, ct).ConfigureAwait(false);
            var requests = new List<(long Offset, Memory<byte> Destination)>();
            var buffered = new List<(byte[] Buffer, List<Piece> Range)>();
            try
            {
                foreach (var range in batch)
                {
                    if (range.Count == 1)
                    {
                        requests.Add((fileStart + range[0].SourceByte, destination.Slice((int)range[0].DestinationByte, (int)range[0].Bytes)));
                        continue;
                    }
                    var length = (int)BufferLength(range);
                    var buffer = ArrayPool<byte>.Shared.Rent(length);
                    buffered.Add((buffer, range));
                    requests.Add((fileStart + range[0].SourceByte, buffer.AsMemory(0, length)));
                }
                await _store.ReadRangesAsync(shardKey, requests, ct).ConfigureAwait(false);
                Interlocked.Add(ref _bytesRead, requests.Sum(r => (long)r.Destination.Length));
                foreach (var (offset, target) in requests)
                {
                    // A piece that is the whole chunk is checked against the chunk's content hash.
                    if (offset == fileStart && target.Length == chunk.Info.ByteLength && chunk.Info.Hash is { } expected) TensorHash.Verify(target.Span, expected, shardKey, chunk.Key);
                }
                foreach (var (buffer, range) in buffered) Scatter(buffer, range, destination.Span);
            }
            finally
            {
                foreach (var (buffer, _) in buffered) ArrayPool<byte>.Shared.Return(buffer);
            }
        }
    }

    /// <summary>
    /// A block-mapped chunk (docs/compression.md#block-reuse): each range through its <see cref="BlockTensorReader"/>, which checks
    /// every block against its hash; a range of one piece straight into the destination, a range of several read once into a
    /// pooled buffer and scattered. (The buffer takes no budget: the block reads inside it do.)
    /// </summary>
    private async Task ReadBlockMappedAsync(int chunkIndex, StoredChunk chunk, List<List<Piece>> ranges, Memory<byte> destination, CancellationToken ct)
    {
        var blocks = _blockReaders.GetOrAdd(chunkIndex, _ => new BlockTensorReader(_store, _checkpointKey, _manifest, _headers, chunk));
        foreach (var range in ranges)
        {
            if (range.Count == 1)
            {
                await blocks.ReadAsync(destination.Slice((int)range[0].DestinationByte, (int)range[0].Bytes), range[0].SourceByte, ct).ConfigureAwait(false);
                continue;
            }
            var length = (int)BufferLength(range);
            var buffer = ArrayPool<byte>.Shared.Rent(length);
            try
            {
                await blocks.ReadAsync(buffer.AsMemory(0, length), range[0].SourceByte, ct).ConfigureAwait(false);
                Scatter(buffer, range, destination.Span);
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
        }
    }

    /// <summary>
    /// The decoded bytes of an encoded chunk, checked against its hash. Not tied to one caller's cancellation: the other ranges
    /// of the tensor share it.
    /// </summary>
    private async Task<byte[]> ReadDecodedAsync(StoredChunk chunk, string shardKey, long fileStart)
    {
        var stored = GC.AllocateUninitializedArray<byte>(checked((int)chunk.Info.ByteLength));
        // An encoded chunk is read whole, however large: its lease is capped at the budget, so it waits for the others' reads but never fails for its size.
        using (await ReadBufferBudget.Shared.AcquireAsync(Math.Min(stored.Length, ReadBufferBudget.Shared.Capacity), CancellationToken.None).ConfigureAwait(false))
        {
            await _store.ReadRangesAsync(shardKey, [(fileStart, stored.AsMemory())], CancellationToken.None).ConfigureAwait(false);
        }
        Interlocked.Add(ref _bytesRead, stored.Length);
        return ShardEncoding.DecodeChecked(stored, chunk.Info, shardKey, chunk.Key);
    }

    /// <summary>Copies each piece of <paramref name="range"/> from <paramref name="buffer"/>, which holds the range from its first piece's start, to its place in the destination.</summary>
    private static void Scatter(byte[] buffer, List<Piece> range, Span<byte> destination)
    {
        var start = range[0].SourceByte;
        foreach (var piece in range)
            buffer.AsSpan((int)(piece.SourceByte - start), (int)piece.Bytes).CopyTo(destination.Slice((int)piece.DestinationByte, (int)piece.Bytes));
    }

    /// <summary>Bytes a range of several pieces is read into: from its first piece's start to its last piece's end.</summary>
    private static long BufferLength(List<Piece> range) => range[^1].SourceByte + range[^1].Bytes - range[0].SourceByte;

    /// <summary>Consecutive ranges grouped so that each group buffers at most <see cref="MaxBatchBytes"/> (a range buffers at most <see cref="MaxBufferBytes"/>).</summary>
    private static IEnumerable<List<List<Piece>>> Batches(List<List<Piece>> ranges)
    {
        var batch = new List<List<Piece>>();
        long buffered = 0;
        foreach (var range in ranges)
        {
            var bytes = range.Count > 1 ? BufferLength(range) : 0;
            if (buffered + bytes > MaxBatchBytes)
            {
                yield return batch;
                (batch, buffered) = ([], 0);
            }
            batch.Add(range);
            buffered += bytes;
        }
        if (batch.Count > 0) yield return batch;
    }
}
