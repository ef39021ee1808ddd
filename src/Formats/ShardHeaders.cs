using System.Collections.Concurrent;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// The headers of a checkpoint's shards, read on first use through two ranged reads each (the length prefix, then the
/// header) and checked against the manifest: the shard's stored length, and each chunk's dtype, shape and byte range.
/// </summary>
public sealed class ShardHeaders(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest)
{
    private readonly ConcurrentDictionary<int, Lazy<Task<Header>>> _headers = new();

    /// <summary>A shard's header with its entries found by key (own shards) and by byte range (reused shards, whose keys differ).</summary>
    private sealed record Header(long DataStart, Dictionary<string, SafetensorsEntry> ByKey, Dictionary<(long, long), SafetensorsEntry> ByRange);

    /// <summary>Where in its shard file the chunk's first byte is, after checking the shard's header lists it as the manifest does.</summary>
    public async Task<long> DataStartAsync(StoredChunk chunk, CancellationToken ct)
    {
        // Shared by every tensor that reads the shard: not tied to one caller's cancellation (a tensor that fails must not fail the others' header).
        var header = await _headers.GetOrAdd(chunk.Info.Shard, shard => new Lazy<Task<Header>>(() => ReadAsync(shard, CancellationToken.None))).Value
            .WaitAsync(ct).ConfigureAwait(false);
        var shard = manifest.Shards[chunk.Info.Shard];
        var info = chunk.Info;
        var entry = shard.Checkpoint is null
            ? header.ByKey.GetValueOrDefault(info.Encoding is null ? chunk.Key : ShardEncoding.StoredKey(chunk.Key, info.Encoding))
            : header.ByRange.GetValueOrDefault((info.DataOffsets[0], info.DataOffsets[1]));
        if (entry is null || !ShardEncoding.HeaderMatches(info, entry))
            throw new CheckpointFormatException(StoreLayout.ShardKey(checkpointKey, shard), "index", $"the shard's header does not list '{chunk.Key}' as the manifest indexes it ({info.DType}[{string.Join(", ", info.Shape)}] at [{info.DataOffsets[0]}, {info.DataOffsets[1]}))");
        return header.DataStart;
    }

    private async Task<Header> ReadAsync(int shardIndex, CancellationToken ct)
    {
        var shard = manifest.Shards[shardIndex];
        var key = await NativeCheckpointReader.PresentShardAsync(store, checkpointKey, manifest, shardIndex, ct).ConfigureAwait(false);
        SafetensorsHeader.CheckFileHoldsPrefix(shard.Bytes, key);
        var prefix = new byte[8];
        await store.ReadRangeAsync(key, 0, prefix, ct).ConfigureAwait(false);
        var json = new byte[SafetensorsHeader.HeaderLength(prefix, shard.Bytes, key)];
        await store.ReadRangeAsync(key, 8, json, ct).ConfigureAwait(false);
        var header = SafetensorsHeader.Parse(json, shard.Bytes, key);
        var byRange = new Dictionary<(long, long), SafetensorsEntry>();
        foreach (var e in header.Entries) byRange.TryAdd((e.Begin, e.End), e);
        return new Header(header.DataStart, header.Entries.ToDictionary(e => e.Key, StringComparer.Ordinal), byRange);
    }
}
