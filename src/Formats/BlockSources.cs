using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// The map of a block-mapped entry (docs/compression.md#block-reuse) and where each source it names is: the entry itself first,
/// then the earlier checkpoints' entries, each found among the manifest's shards and present in the store at its recorded
/// length. A load reads blocks from these places; a save builds its next map on them.
/// </summary>
/// <param name="Map">The entry's map.</param>
/// <param name="Places">Source i of the map at index i.</param>
internal sealed record BlockSources(BlockMap Map, IReadOnlyList<BlockSources.Place> Places)
{
    /// <param name="Source">The source with file offsets; the entry itself is named by its own checkpoint.</param>
    /// <param name="Shard">The shard holding it, as a later manifest lists it: with the folder that holds it.</param>
    /// <param name="ShardKey">The shard's store key.</param>
    internal sealed record Place(BlockMap.Source Source, ShardInfo Shard, string ShardKey);

    /// <summary>Reads the map of <paramref name="entry"/>, a tensor of checkpoint <paramref name="checkpointKey"/>, and finds its sources.</summary>
    /// <exception cref="CheckpointFormatException">the map is malformed, names a shard the manifest does not list, or a shard is missing or of another length</exception>
    public static async Task<BlockSources> ResolveAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, ShardHeaders headers, StoredChunk entry, CancellationToken ct)
    {
        var info = entry.Info;
        var shard = manifest.Shards[info.Shard];
        var shardKey = StoreLayout.ShardKey(checkpointKey, shard);
        if (shard.Checkpoint is not null || info.Shape.Length == 0 || info.Shape[0] == 0)
            throw new CheckpointFormatException(shardKey, BlockMap.Encoding, $"tensor '{entry.Key}' is block-mapped, which needs rows and an entry in one of the checkpoint's own shards");
        var entryAt = await headers.DataStartAsync(entry, ct).ConfigureAwait(false) + info.DataOffsets[0];
        var map = await BlockMap.ReadAsync(store, shardKey, entryAt, info.ByteLength, info.LogicalLength, info.LogicalLength / info.Shape[0], entry.Key, ct).ConfigureAwait(false);
        var name = StoreLayout.NameOf(checkpointKey);
        var places = new List<Place>(map.External.Count + 1)
        {
            new(new BlockMap.Source(name, shard.Path, entryAt + map.MapLength, entryAt + map.OwnPayloadAt, map.OwnSlots), shard with { Checkpoint = name }, shardKey),
        };
        foreach (var source in map.External)
        {
            var index = Enumerable.Range(0, manifest.Shards.Count).FirstOrDefault(i => manifest.Shards[i].Checkpoint == source.Holder && manifest.Shards[i].Path == source.Path, -1);
            if (index < 0)
                throw new CheckpointFormatException(shardKey, BlockMap.Encoding, $"tensor '{entry.Key}' has blocks in '{source.Holder}/{source.Path}', a shard the manifest does not list");
            var key = await NativeCheckpointReader.PresentShardAsync(store, checkpointKey, manifest, index, ct).ConfigureAwait(false);
            places.Add(new Place(source, manifest.Shards[index], key));
        }
        return new BlockSources(map, places);
    }
}
