using System.Buffers.Binary;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Decides, for an incremental save with <see cref="BlockReuse"/>, what each large tensor writes (docs/compression.md#block-reuse):
/// its blocks are hashed and compared with the map of the run's latest earlier checkpoint that stored it block-mapped; the
/// changed blocks are written, the others referenced where they are. Without such a checkpoint (the first save, another
/// dtype, shape or block size, a source gone from the store) every block is written.
/// </summary>
internal static class BlockPlanner
{
    /// <summary>What the save writes for each block-mapped tensor, by tensor key, and the earlier shards their maps reference.</summary>
    public sealed record Plan(IReadOnlyDictionary<string, (BlockEntry Entry, EncodedTensor Tensor)> Entries, IReadOnlyList<ShardInfo> Referenced)
    {
        public static Plan None { get; } = new(new Dictionary<string, (BlockEntry, EncodedTensor)>(), []);

        /// <summary>The tensor as the shard stores it: its entry under the marked key when block-mapped, else itself.</summary>
        public NamedTensor Stored(NamedTensor tensor) =>
            Entries.TryGetValue(tensor.Key, out var planned) ? new NamedTensor(ShardEncoding.StoredKey(tensor.Key, BlockMap.Encoding), planned.Entry) { Chunk = tensor.Chunk } : tensor;

        /// <summary>The block-mapped tensors by key, as the shard index records them.</summary>
        public IReadOnlyDictionary<string, EncodedTensor> Encoded => Entries.ToDictionary(e => e.Key, e => e.Value.Tensor, StringComparer.Ordinal);
    }

    /// <summary>An earlier entry's blocks: their hashes and, per block, its source (in <see cref="Sources"/>) and slot.</summary>
    private sealed record Base(ulong[] Hashes, int[] SourceOf, int[] SlotOf, IReadOnlyList<BlockSources.Place> Sources);

    /// <param name="store">the store holding the run</param>
    /// <param name="checkpointKey">the new checkpoint's key; earlier checkpoints are its siblings</param>
    /// <param name="earlier">the run's committed checkpoints the save may build on</param>
    /// <param name="tensors">the tensors of the save (or of this rank's share)</param>
    /// <param name="hashes">every tensor's content hash (<see cref="TensorHash.All"/>)</param>
    /// <param name="options">which tensors, and the block size</param>
    /// <param name="ct">cancels the reads of earlier maps</param>
    public static async Task<Plan> PlanAsync(ICheckpointStore store, string checkpointKey, IReadOnlyList<EarlierCheckpoint> earlier,
        IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string> hashes, BlockReuse options, CancellationToken ct)
    {
        options.Validate();
        var entries = new Dictionary<string, (BlockEntry, EncodedTensor)>(StringComparer.Ordinal);
        var referenced = new List<ShardInfo>();
        var keys = tensors.Select(t => t.Key).ToHashSet(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            var raw = tensor.ByteLength;
            var shape = tensor.Source.Shape;
            // A key that looks like an entry's, or whose entry's key another tensor has, is reused or written whole.
            if (raw < Math.Max(1, options.MinBytes) || shape.Length == 0 || ShardEncoding.TensorKeyOf(tensor.Key) is not null
                || keys.Contains(ShardEncoding.StoredKey(tensor.Key, BlockMap.Encoding))) continue;
            var blockBytes = BlockMap.BlockBytesFor(raw, shape[0], options.BlockBytes);
            if (blockBytes > BlockMap.MaxBlockBytes || BlockMap.BlocksIn(raw, blockBytes) > BlockMap.MaxBlocks) continue; // rows too long, or too many blocks: reused or written whole
            var blockHashes = BlockHasher.Of(tensor.Source, raw, (int)blockBytes);
            var previous = await BaseAsync(store, checkpointKey, earlier, tensor, (int)blockBytes, ct).ConfigureAwait(false);
            var (entry, sources) = Build(tensor.Source, raw, (int)blockBytes, blockHashes, previous, options.MaxSources);
            entries[tensor.Key] = (entry, new EncodedTensor(tensor.Source.DType, shape, raw, hashes[tensor.Key], BlockMap.Encoding));
            foreach (var shard in sources) referenced.IndexOrAdd(shard);
        }
        return entries.Count == 0 ? Plan.None : new Plan(entries, referenced);
    }

    /// <summary>The entry to write: changed blocks and those of dropped sources written, the rest referenced.</summary>
    private static (BlockEntry Entry, List<ShardInfo> Sources) Build(ITensorSource tensor, long raw, int blockBytes, ulong[] blockHashes, Base? previous, int maxSources)
    {
        var blockCount = blockHashes.Length;
        var written = new bool[blockCount];
        var live = new int[previous?.Sources.Count ?? 0];
        for (var block = 0; block < blockCount; block++)
        {
            if (previous is null || previous.Hashes[block] != blockHashes[block]) written[block] = true;
            else live[previous.SourceOf[block]]++;
        }
        // Too many places to read from: the sources serving the fewest blocks are dropped, their blocks written again.
        var kept = Enumerable.Range(0, live.Length).Where(s => live[s] > 0).OrderByDescending(s => live[s]).ThenBy(s => s).Take(maxSources - 1).Order().ToList();
        var newIndex = Enumerable.Repeat(-1, live.Length).ToArray();
        for (var i = 0; i < kept.Count; i++) newIndex[kept[i]] = i + 1;
        var runs = new List<BlockMap.Run>();
        var ownHashes = new List<ulong>();
        for (var block = 0; block < blockCount; block++)
        {
            int source, slot;
            if (!written[block] && newIndex[previous!.SourceOf[block]] is var index and > 0) (source, slot) = (index, previous.SlotOf[block]);
            else
            {
                written[block] = true;
                (source, slot) = (0, ownHashes.Count);
                ownHashes.Add(blockHashes[block]);
            }
            if (runs.Count > 0 && runs[^1] is var last && last.SourceIndex == source && last.FirstSlot + last.Blocks == slot)
                runs[^1] = last with { Blocks = last.Blocks + 1 };
            else runs.Add(new BlockMap.Run(block, 1, source, slot));
        }
        var external = kept.Select(s => previous!.Sources[s]).ToList();
        var map = new BlockMap(raw, blockBytes, external.Select(s => s.Source).ToList(), [.. runs], ownHashes.Count);
        return (new BlockEntry(tensor, map, map.Serialize(), [.. ownHashes], written), external.Select(s => s.Shard).ToList());
    }

    /// <summary>
    /// The blocks of the latest earlier checkpoint that stored <paramref name="tensor"/>'s key block-mapped with the same dtype,
    /// shape and block size, with every source it names present in the store; null when there is none.
    /// </summary>
    private static async Task<Base?> BaseAsync(ICheckpointStore store, string checkpointKey, IReadOnlyList<EarlierCheckpoint> earlier, NamedTensor tensor, int blockBytes, CancellationToken ct)
    {
        var runPrefix = StoreLayout.RunPrefixOf(checkpointKey);
        var ownName = checkpointKey[runPrefix.Length..];
        var dtype = tensor.Source.DType.Name();
        var candidate = earlier
            .Where(e => e.Name != ownName && e.Manifest.Tensors.TryGetValue(tensor.Key, out var info) && info.Encoding == BlockMap.Encoding && info.DType == dtype
                && info.Shape.SequenceEqual(tensor.Source.Shape) && e.Manifest.Shards[info.Shard].Checkpoint is null)
            .MaxBy(e => e.Manifest.CreatedUtc);
        if (candidate is null) return null;
        var (name, manifest) = candidate;
        var info = manifest.Tensors[tensor.Key];
        var holderKey = runPrefix + name;
        try
        {
            var (map, sources) = await BlockSources.ResolveAsync(store, holderKey, manifest, new ShardHeaders(store, holderKey, manifest),
                new StoredChunk(tensor.Key, TensorLayout.Whole(info.Shape), info), ct).ConfigureAwait(false);
            // A source in a folder of the new checkpoint's own name would be replaced by this very save.
            if (map.BlockBytes != blockBytes || sources.Any(place => place.Source.Holder == ownName)) return null;
            var hashes = new ulong[sources.Count][];
            for (var s = 0; s < sources.Count; s++)
            {
                var (source, shard, key) = sources[s];
                var bytes = new byte[(long)source.Slots * BlockMap.HashBytes];
                if (source.HashesAt + bytes.Length > shard.Bytes) return null;
                await store.ReadRangeAsync(key, source.HashesAt, bytes, ct).ConfigureAwait(false);
                hashes[s] = new ulong[source.Slots];
                for (var slot = 0; slot < source.Slots; slot++) hashes[s][slot] = BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(slot * BlockMap.HashBytes));
            }
            var blockHashes = new ulong[map.BlockCount];
            var sourceOf = new int[map.BlockCount];
            var slotOf = new int[map.BlockCount];
            foreach (var run in map.Runs)
            {
                for (var i = 0; i < run.Blocks; i++)
                {
                    var block = run.FirstBlock + i;
                    (sourceOf[block], slotOf[block]) = (run.SourceIndex, run.FirstSlot + i);
                    blockHashes[block] = hashes[run.SourceIndex][run.FirstSlot + i];
                }
            }
            return new Base(blockHashes, sourceOf, slotOf, sources);
        }
        catch (Exception e) when (e is CheckpointFormatException or StoreObjectNotFoundException)
        {
            return null; // a damaged earlier map, or a shard deleted meanwhile (retention), is not built upon: this save writes every block
        }
    }
}
