using System.Buffers.Binary;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Where the blocks of a block-mapped tensor are (docs/compression.md#block-reuse). A block is a fixed number of whole rows;
/// the last one may be shorter. Blocks live in <em>sources</em>: source 0 is the entry that holds this map (its blocks follow
/// the map), the others are entries of earlier checkpoints' shards, named by the folder that holds the shard, the shard's
/// file name, and file offsets. Each source stores its blocks in ascending block order, one after another
/// (<c>slots</c>), after an array of their 64-bit XxHash3 hashes in the same order. Runs map consecutive blocks to
/// consecutive slots of one source.
/// <code>
/// entry := header sources runs own-hashes own-blocks
/// header := "CKB1" block_bytes:i32 raw_length:i64 source_count:i32 run_count:i32 own_slots:i32 0:i32   (all little-endian; 32 bytes)
/// source := hashes_at:i64 payload_at:i64 slots:i32 holder_length:u8 holder path_length:u8 path        (offsets within the shard file)
/// run := blocks:i32 source:i32 first_slot:i32
/// own-hashes := hash:u64 per own block
/// </code>
/// </summary>
public sealed class BlockMap
{
    /// <summary>The encoding name manifests record for a block-mapped tensor.</summary>
    public const string Encoding = "blocks";

    /// <summary>The smallest block a save may ask for: below it, 20 bytes of hash and map per block outweigh the block.</summary>
    public const int MinBlockBytes = 64;

    /// <summary>The largest block (a block is also the unit a ranged read checks).</summary>
    public const int MaxBlockBytes = 16 << 20;

    /// <summary>The most sources a map may name, its own entry included; readers refuse more.</summary>
    public const int MaxSources = 1024;

    /// <summary>The most blocks one tensor may have (64M): its map and hashes stay well within one array. A tensor with more is reused or written whole.</summary>
    public const int MaxBlocks = 1 << 26;

    internal const int HeaderBytes = 32;
    internal const int RunBytes = 12;
    internal const int HashBytes = 8;
    private const int SourceFixedBytes = 8 + 8 + 4 + 1 + 1;
    private const int MaxSourceBytes = SourceFixedBytes + 2 * byte.MaxValue;
    private static ReadOnlySpan<byte> Magic => "CKB1"u8;

    /// <summary>An earlier checkpoint's entry that holds blocks.</summary>
    /// <param name="Holder">The checkpoint folder holding the shard.</param>
    /// <param name="Path">The shard's file name in that folder.</param>
    /// <param name="HashesAt">File offset of the source's hash array.</param>
    /// <param name="PayloadAt">File offset of its first block.</param>
    /// <param name="Slots">Blocks it stores.</param>
    internal sealed record Source(string Holder, string Path, long HashesAt, long PayloadAt, int Slots);

    /// <summary><see cref="Blocks"/> consecutive blocks from <see cref="FirstBlock"/> on are slots <see cref="FirstSlot"/> on of source <see cref="SourceIndex"/> (0: this entry).</summary>
    internal readonly record struct Run(int FirstBlock, int Blocks, int SourceIndex, int FirstSlot);

    internal BlockMap(long rawLength, int blockBytes, IReadOnlyList<Source> external, Run[] runs, int ownSlots)
    {
        RawLength = rawLength;
        BlockBytes = blockBytes;
        External = external;
        Runs = runs;
        OwnSlots = ownSlots;
        BlockCount = BlockCountOf(rawLength, blockBytes);
        MapLength = HeaderBytes + external.Sum(s => SourceFixedBytes + Utf8Of(s.Holder).Length + Utf8Of(s.Path).Length) + (long)runs.Length * RunBytes;
    }

    internal long RawLength { get; }
    internal int BlockBytes { get; }
    internal int BlockCount { get; }

    /// <summary>Sources 1 to n; source 0 is the entry holding the map.</summary>
    internal IReadOnlyList<Source> External { get; }

    /// <summary>Every block exactly once, in block order.</summary>
    internal Run[] Runs { get; }

    /// <summary>Blocks this entry stores after its map.</summary>
    internal int OwnSlots { get; }

    /// <summary>Bytes of header, sources and runs: the own hashes start here, within the entry.</summary>
    internal long MapLength { get; }

    /// <summary>Where the own blocks start within the entry.</summary>
    internal long OwnPayloadAt => MapLength + (long)OwnSlots * HashBytes;

    /// <summary>The entry's whole length: map, own hashes, own blocks.</summary>
    internal long EntryLength => OwnPayloadAt + PayloadLength(OwnSlots, FinalBlockIsOwn);

    private bool FinalBlockIsOwn => Runs.Length > 0 && Runs[^1].SourceIndex == 0;

    /// <summary>Blocks of <paramref name="blockBytes"/> in <paramref name="rawLength"/> bytes, the last one shorter; callers keep it within <see cref="MaxBlocks"/>.</summary>
    internal static int BlockCountOf(long rawLength, int blockBytes) => checked((int)BlocksIn(rawLength, blockBytes));

    /// <summary>The block count as a long, for bounds checks before anything relies on it fitting.</summary>
    internal static long BlocksIn(long rawLength, long blockBytes) => (rawLength + blockBytes - 1) / blockBytes;

    /// <summary>The length of block <paramref name="block"/>: <see cref="BlockBytes"/>, or less for the last one.</summary>
    internal int BlockLength(int block) => block == BlockCount - 1 ? (int)(RawLength - (long)block * BlockBytes) : BlockBytes;

    /// <summary>The bytes of <paramref name="slots"/> stored blocks, the last of them the tensor's final block when <paramref name="endsWithFinal"/>.</summary>
    internal long PayloadLength(int slots, bool endsWithFinal) =>
        (long)slots * BlockBytes - (endsWithFinal && slots > 0 ? BlockBytes - BlockLength(BlockCount - 1) : 0);

    /// <summary>The run holding <paramref name="block"/>'s index in <see cref="Runs"/>.</summary>
    internal int RunOf(int block)
    {
        int low = 0, high = Runs.Length - 1;
        while (low < high)
        {
            var middle = (low + high + 1) / 2;
            if (Runs[middle].FirstBlock <= block) low = middle;
            else high = middle - 1;
        }
        return low;
    }

    /// <summary>
    /// The block size for a tensor of <paramref name="rawLength"/> bytes and <paramref name="rows"/> rows: whole rows, as many as
    /// fit in <paramref name="wanted"/>, but at least one row and at least <see cref="MinBlockBytes"/>.
    /// </summary>
    internal static long BlockBytesFor(long rawLength, long rows, int wanted)
    {
        var rowBytes = rawLength / rows;
        return Math.Max(Math.Max(1, wanted / rowBytes), (MinBlockBytes + rowBytes - 1) / rowBytes) * rowBytes;
    }

    /// <summary>Header, sources and runs; the own hashes and blocks follow them in the entry.</summary>
    internal byte[] Serialize()
    {
        var bytes = new byte[MapLength];
        var span = bytes.AsSpan();
        Magic.CopyTo(span);
        BinaryPrimitives.WriteInt32LittleEndian(span[4..], BlockBytes);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], RawLength);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], External.Count);
        BinaryPrimitives.WriteInt32LittleEndian(span[20..], Runs.Length);
        BinaryPrimitives.WriteInt32LittleEndian(span[24..], OwnSlots);
        var at = HeaderBytes;
        foreach (var source in External)
        {
            BinaryPrimitives.WriteInt64LittleEndian(span[at..], source.HashesAt);
            BinaryPrimitives.WriteInt64LittleEndian(span[(at + 8)..], source.PayloadAt);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 16)..], source.Slots);
            at += 20;
            foreach (var text in (string[])[source.Holder, source.Path])
            {
                var encoded = Utf8Of(text);
                span[at++] = (byte)encoded.Length;
                encoded.CopyTo(span[at..]);
                at += encoded.Length;
            }
        }
        foreach (var run in Runs)
        {
            BinaryPrimitives.WriteInt32LittleEndian(span[at..], run.Blocks);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 4)..], run.SourceIndex);
            BinaryPrimitives.WriteInt32LittleEndian(span[(at + 8)..], run.FirstSlot);
            at += RunBytes;
        }
        return bytes;
    }

    /// <summary>
    /// Reads and checks the map of the entry at file offset <paramref name="entryAt"/> of <paramref name="shardKey"/>, whose
    /// length the manifest bounds: at most two ranged reads, each no longer than the entry.
    /// </summary>
    /// <param name="store">the store holding the shard</param>
    /// <param name="shardKey">the shard's store key</param>
    /// <param name="entryAt">the entry's first byte in the shard file</param>
    /// <param name="entryLength">the entry's length, from the manifest</param>
    /// <param name="rawLength">the tensor's length (dtype × shape)</param>
    /// <param name="rowBytes">bytes per row: a block is whole rows</param>
    /// <param name="key">the tensor, for errors</param>
    /// <param name="ct">cancels the reads</param>
    /// <exception cref="CheckpointFormatException">the map is malformed or does not fit its entry</exception>
    internal static async Task<BlockMap> ReadAsync(ICheckpointStore store, string shardKey, long entryAt, long entryLength, long rawLength, long rowBytes, string key, CancellationToken ct)
    {
        if (entryLength < HeaderBytes) throw Bad(shardKey, key, $"the entry holds {entryLength} bytes, less than a map's header");
        var header = new byte[HeaderBytes];
        await store.ReadRangeAsync(shardKey, entryAt, header, ct).ConfigureAwait(false);
        if (!header.AsSpan(0, 4).SequenceEqual(Magic)) throw Bad(shardKey, key, "the entry does not start with a block map");
        var blockBytes = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(4));
        var raw = BinaryPrimitives.ReadInt64LittleEndian(header.AsSpan(8));
        var sourceCount = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(16));
        var runCount = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(20));
        var ownSlots = BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(24));
        if (raw != rawLength) throw Bad(shardKey, key, $"the map is for {raw} bytes, the tensor has {rawLength}");
        if (blockBytes < MinBlockBytes || blockBytes > MaxBlockBytes || rowBytes < 1 || blockBytes % rowBytes != 0)
            throw Bad(shardKey, key, $"block size {blockBytes} is not a whole number of {rowBytes}-byte rows from {MinBlockBytes} to {MaxBlockBytes} bytes");
        if (BlocksIn(raw, blockBytes) > MaxBlocks) throw Bad(shardKey, key, $"{BlocksIn(raw, blockBytes)} blocks of {blockBytes} bytes, more than {MaxBlocks}");
        if (BinaryPrimitives.ReadInt32LittleEndian(header.AsSpan(28)) != 0) throw Bad(shardKey, key, "the header's reserved field is not 0 (a newer map format?)");
        var blockCount = BlockCountOf(raw, blockBytes);
        if (sourceCount < 0 || sourceCount >= MaxSources) throw Bad(shardKey, key, $"{sourceCount} earlier sources, more than {MaxSources - 1}");
        if (runCount < 1 || runCount > blockCount || ownSlots < 0 || ownSlots > blockCount)
            throw Bad(shardKey, key, $"{runCount} runs and {ownSlots} own blocks for {blockCount} blocks");
        // Bounded by the entry before anything is allocated: the entry's length comes from a checked manifest, and the least
        // the counts take (sources, runs, own hashes and all but the last own block whole) must fit in it.
        var least = (long)sourceCount * SourceFixedBytes + (long)runCount * RunBytes + (long)ownSlots * HashBytes + (ownSlots > 0 ? (long)(ownSlots - 1) * blockBytes + 1 : 0);
        if (least > entryLength - HeaderBytes) throw Bad(shardKey, key, $"the map's counts need at least {HeaderBytes + least} bytes, the entry holds {entryLength}");
        var listed = Math.Min(entryLength - HeaderBytes, (long)sourceCount * MaxSourceBytes + (long)runCount * RunBytes);
        var body = new byte[listed];
        await store.ReadRangeAsync(shardKey, entryAt + HeaderBytes, body, ct).ConfigureAwait(false);
        var map = Parse(body, raw, blockBytes, blockCount, sourceCount, runCount, ownSlots, shardKey, key);
        if (map.EntryLength != entryLength) throw Bad(shardKey, key, $"the map and its {ownSlots} own blocks take {map.EntryLength} bytes, the entry holds {entryLength}");
        return map;
    }

    private static BlockMap Parse(ReadOnlySpan<byte> body, long raw, int blockBytes, int blockCount, int sourceCount, int runCount, int ownSlots, string shardKey, string key)
    {
        var at = 0;
        var external = new List<Source>(sourceCount);
        for (var i = 0; i < sourceCount; i++)
        {
            if (body.Length - at < SourceFixedBytes) throw Bad(shardKey, key, "the source list is cut short");
            var hashesAt = BinaryPrimitives.ReadInt64LittleEndian(body[at..]);
            var payloadAt = BinaryPrimitives.ReadInt64LittleEndian(body[(at + 8)..]);
            var slots = BinaryPrimitives.ReadInt32LittleEndian(body[(at + 16)..]);
            at += 20;
            var holder = Text(body, ref at, shardKey, key);
            var path = Text(body, ref at, shardKey, key);
            if (!CheckpointName.IsValid(holder) || !StoreLayout.IsShard(path)) throw Bad(shardKey, key, $"source {i + 1} names '{holder}/{path}', which is not a checkpoint's shard");
            if (hashesAt < 0 || payloadAt < 0 || slots < 1 || slots > blockCount) throw Bad(shardKey, key, $"source {i + 1} has offsets {hashesAt} and {payloadAt} and {slots} blocks");
            external.Add(new Source(holder, path, hashesAt, payloadAt, slots));
        }
        if (body.Length - at < (long)runCount * RunBytes) throw Bad(shardKey, key, "the run list is cut short");
        var runs = new Run[runCount];
        long first = 0;
        for (var i = 0; i < runCount; i++, at += RunBytes)
        {
            var blocks = BinaryPrimitives.ReadInt32LittleEndian(body[at..]);
            var source = BinaryPrimitives.ReadInt32LittleEndian(body[(at + 4)..]);
            var firstSlot = BinaryPrimitives.ReadInt32LittleEndian(body[(at + 8)..]);
            var slots = source == 0 ? ownSlots : source > 0 && source <= sourceCount ? external[source - 1].Slots : -1;
            if (blocks < 1 || slots < 0 || firstSlot < 0 || (long)firstSlot + blocks > slots || first + blocks > blockCount)
                throw Bad(shardKey, key, $"run {i} ({blocks} blocks from slot {firstSlot} of source {source}) lies outside the tensor or its source");
            runs[i] = new Run((int)first, blocks, source, firstSlot);
            first += blocks;
        }
        if (first != blockCount) throw Bad(shardKey, key, $"the runs cover {first} of {blockCount} blocks");
        var map = new BlockMap(raw, blockBytes, external, runs, ownSlots);
        // The final, shorter block ends the own blocks when it is one of them, so that the entry's length says where each block is.
        if (runs[^1] is { SourceIndex: 0 } last && last.FirstSlot + last.Blocks != ownSlots) throw Bad(shardKey, key, "the final block is not the last of the entry's own blocks");
        return map;
    }

    private static string Text(ReadOnlySpan<byte> body, ref int at, string shardKey, string key)
    {
        if (at >= body.Length || body.Length - at - 1 < body[at]) throw Bad(shardKey, key, "the source list is cut short");
        var length = body[at];
        var text = System.Text.Encoding.UTF8.GetString(body.Slice(at + 1, length));
        at += 1 + length;
        return text;
    }

    private static byte[] Utf8Of(string text)
    {
        var bytes = System.Text.Encoding.UTF8.GetBytes(text);
        return bytes.Length <= byte.MaxValue ? bytes : throw new ArgumentException($"'{text}' is longer than {byte.MaxValue} bytes", nameof(text));
    }

    private static CheckpointFormatException Bad(string shardKey, string key, string detail) => new(shardKey, Encoding, $"tensor '{key}': {detail}");

    /// <summary>The most bytes an entry of a tensor of <paramref name="rawLength"/> bytes can take: every block its own, at the smallest block size, plus a full source list.</summary>
    internal static long MaxEntryLength(long rawLength) =>
        HeaderBytes + (long)(MaxSources - 1) * MaxSourceBytes + rawLength + (rawLength / MinBlockBytes + 1) * (RunBytes + HashBytes);
}
