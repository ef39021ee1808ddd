using System.Collections.Concurrent;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Reads and verifies native checkpoints into fresh tensors. Nothing is returned until every read has succeeded and every
/// shard's length and checksum have been checked, so a caller that copies the result into a model only afterwards changes
/// nothing when any read fails.
/// </summary>
public static class NativeCheckpointReader
{
    /// <summary>Reads and parses the manifest of checkpoint <paramref name="checkpointKey"/>, which also checks the manifest's own consistency.</summary>
    /// <exception cref="CheckpointNotFoundException">The store has no manifest under that key: no committed checkpoint.</exception>
    /// <exception cref="CheckpointFormatException">The manifest is longer than <see cref="ManifestJson.MaxBytes"/> or is not a valid manifest.</exception>
    public static async Task<CheckpointManifest> ReadManifestAsync(ICheckpointStore store, string checkpointKey, CancellationToken cancellationToken = default)
    {
        var key = $"{StoreKey.Validate(checkpointKey)}/{ManifestJson.FileName}";
        var entry = await store.GetEntryAsync(key, cancellationToken).ConfigureAwait(false)
            ?? throw new CheckpointNotFoundException(checkpointKey, store.Description);
        if (entry.Length > ManifestJson.MaxBytes) throw new CheckpointFormatException(key, "manifest length", $"{entry.Length} bytes exceeds {ManifestJson.MaxBytes}");
        var bytes = new byte[entry.Length];
        await store.ReadRangeAsync(key, 0, bytes, cancellationToken).ConfigureAwait(false);
        return ManifestJson.Parse(bytes, key);
    }

    /// <summary>Loads every tensor through <paramref name="allocate"/> and returns the state tree.</summary>
    public static Task<OrderedDictionary<string, object?>> LoadAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest,
        TensorAllocator allocate, IProgress<long>? progress = null, CancellationToken cancellationToken = default) =>
        LoadAsync(store, checkpointKey, manifest, allocate, new NativeLoadOptions { Progress = progress }, cancellationToken);

    /// <summary>
    /// Loads every tensor into fresh tensors from <paramref name="allocate"/> and returns the state tree.
    /// </summary>
    public static async Task<OrderedDictionary<string, object?>> LoadAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest,
        TensorAllocator allocate, NativeLoadOptions options, CancellationToken cancellationToken = default)
    {
        var values = new ConcurrentDictionary<string, object>(StringComparer.Ordinal);
        options = options with { Progress = Serialized(options.Progress) };
        if (options.Layouts is { } layouts)
        {
            await LoadSlicesAsync(store, checkpointKey, manifest, allocate, layouts, values, options, cancellationToken).ConfigureAwait(false);
            return StateTree.Expand(manifest.State, key => values[key]);
        }
        var chunks = ShardedTensorInfo.ChunkKeys(manifest.Sharded.Values);
        await ReadShardsAsync(store, checkpointKey, manifest, (key, info, dtype) =>
        {
            if (chunks.Contains(key) || info.Encoding == BlockMap.Encoding) return null; // verified now, assembled below
            var (value, target) = allocate(key, dtype, info.Shape);
            values[key] = value;
            return target;
        }, options.Progress, options.MaxParallelShards, options.MaxParallelReads ?? store.PreferredReadsInFlight, blockSourcesToo: false, cancellationToken).ConfigureAwait(false);
        await AssembleShardedAsync(store, checkpointKey, manifest, allocate, values, options, cancellationToken).ConfigureAwait(false);
        return StateTree.Expand(manifest.State, key => values[key]);
    }

    /// <summary>
    /// After every shard verified: each sharded tensor is read again from its chunks (ranged reads) into a fresh whole
    /// tensor, and each block-mapped one from its blocks. (The verifying pass reported the progress.)
    /// </summary>
    private static Task AssembleShardedAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest,
        TensorAllocator allocate, ConcurrentDictionary<string, object> values, NativeLoadOptions options, CancellationToken ct)
    {
        var chunks = ShardedTensorInfo.ChunkKeys(manifest.Sharded.Values);
        var blockMapped = manifest.Tensors.Where(t => t.Value.Encoding == BlockMap.Encoding && !chunks.Contains(t.Key)).Select(t => t.Key);
        return ReadSlicesAsync(store, checkpointKey, manifest, manifest.Sharded.Keys.Concat(blockMapped).Select(key => StoredTensorChunks.Of(manifest, key)),
            t => TensorLayout.Whole(t.Shape), allocate, values, options with { Progress = null }, ct);
    }

    /// <summary>A load into declared layouts: for every tensor the state references, only the bytes of the part asked for.</summary>
    private static Task LoadSlicesAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, TensorAllocator allocate,
        Func<string, long[], TensorLayout?> layouts, ConcurrentDictionary<string, object> values, NativeLoadOptions options, CancellationToken ct) =>
        ReadSlicesAsync(store, checkpointKey, manifest, StoredTensorChunks.All(manifest), t => layouts(t.Key, t.Shape) ?? TensorLayout.Whole(t.Shape),
            allocate, values, options, ct);

    /// <summary>Reads each tensor's part given by <paramref name="layoutOf"/> through a <see cref="SliceReader"/>, several tensors at once.</summary>
    private static Task ReadSlicesAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, IEnumerable<StoredTensorChunks> tensors,
        Func<StoredTensorChunks, TensorLayout> layoutOf, TensorAllocator allocate, ConcurrentDictionary<string, object> values,
        NativeLoadOptions options, CancellationToken ct)
    {
        var headers = new ShardHeaders(store, checkpointKey, manifest);
        return Parallel.ForEachAsync(tensors, new ParallelOptions { MaxDegreeOfParallelism = options.MaxParallelShards, CancellationToken = ct }, async (tensor, token) =>
        {
            var layout = layoutOf(tensor);
            var reader = new SliceReader(store, checkpointKey, manifest, headers, tensor, layout);
            var (value, target) = allocate(tensor.Key, tensor.DType, layout.LocalShape);
            values[tensor.Key] = value;
            // A block-mapped tensor read whole is checked against its hash as well as block by block: its map could send a block to the wrong place.
            if (layout.IsWhole && tensor.Chunks is [{ Info: { Encoding: BlockMap.Encoding, Hash: { } hash } info } whole])
                target = TensorHash.Checking(target, info.LogicalLength, hash, StoreLayout.ShardKey(checkpointKey, manifest.Shards[info.Shard]), whole.Key);
            if (reader.BytesNeeded > 0) await target.FillAsync(reader.ReadAsync, token).ConfigureAwait(false);
            options.Statistics?.Add(reader.BytesNeeded, reader.BytesRead);
            options.Progress?.Report(reader.BytesNeeded);
        });
    }

    /// <summary>The store key of shard <paramref name="shardIndex"/>, after checking that it is there with the length the manifest records.</summary>
    internal static async Task<string> PresentShardAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, int shardIndex, CancellationToken ct)
    {
        var shard = manifest.Shards[shardIndex];
        var key = StoreLayout.ShardKey(checkpointKey, shard);
        var entry = await store.GetEntryAsync(key, ct).ConfigureAwait(false)
            ?? throw new CheckpointFormatException(key, "presence", shard.Checkpoint is not null
                ? $"shard is missing from {store.Description}: checkpoint '{manifest.Name}' reuses it from checkpoint '{shard.Checkpoint}'"
                : $"shard is missing from {store.Description}");
        if (entry.Length != shard.Bytes)
            throw new CheckpointFormatException(key, "length", $"manifest records {shard.Bytes} bytes, store has {entry.Length} ({(entry.Length < shard.Bytes ? "truncated" : "extra bytes")})");
        return key;
    }

    /// <summary>
    /// Reads every shard end to end, checking lengths, headers against the index, and checksums; then reads each block-mapped
    /// tensor from its blocks (docs/compression.md#block-reuse), checking every block's hash and the tensor's.
    /// </summary>
    public static async Task VerifyAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, IProgress<long>? progress = null, CancellationToken cancellationToken = default)
    {
        await ReadShardsAsync(store, checkpointKey, manifest, (_, _, _) => null, Serialized(progress), Environment.ProcessorCount, store.PreferredReadsInFlight, blockSourcesToo: true, cancellationToken).ConfigureAwait(false);
        var headers = new ShardHeaders(store, checkpointKey, manifest);
        foreach (var (key, info) in manifest.Tensors.Where(t => t.Value.Encoding == BlockMap.Encoding))
        {
            var reader = new BlockTensorReader(store, checkpointKey, manifest, headers, new StoredChunk(key, TensorLayout.Whole(info.Shape), info));
            await TensorHash.Checking(null, info.LogicalLength, info.Hash!, StoreLayout.ShardKey(checkpointKey, manifest.Shards[info.Shard]), key)
                .FillAsync(reader.ReadAsync, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Shards are read in parallel; the caller's progress sees one report at a time.</summary>
    private static IProgress<long>? Serialized(IProgress<long>? progress) => progress is null ? null : new SerializedProgress(progress);

    /// <summary>
    /// Finds the manifest's tensor for a shard's header entry. In a shard of this checkpoint's own, by key, as
    /// written. In a reused shard, which may hold more tensors than this checkpoint uses and under other keys, by
    /// byte range (incremental saves never reuse an empty tensor, so every range there is distinct).
    /// </summary>
    private sealed class ShardIndex
    {
        private readonly CheckpointManifest _manifest;
        private readonly Dictionary<(long, long), (string Key, TensorInfo Info)>[] _reused;

        public ShardIndex(CheckpointManifest manifest, string checkpointKey)
        {
            _manifest = manifest;
            _reused = manifest.Shards.Select(_ => new Dictionary<(long, long), (string, TensorInfo)>()).ToArray();
            foreach (var (key, info) in manifest.Tensors)
            {
                if (manifest.Shards[info.Shard].Checkpoint is null) continue;
                if (info.ByteLength == 0 || !_reused[info.Shard].TryAdd((info.DataOffsets[0], info.DataOffsets[1]), (key, info)))
                    throw new CheckpointFormatException(StoreLayout.ManifestKey(checkpointKey), "index", $"tensor '{key}' is indexed to an empty or already indexed range of a reused shard");
            }
        }

        public (string Key, TensorInfo Info)? Find(int shard, SafetensorsEntry entry)
        {
            if (_manifest.Shards[shard].Checkpoint is not null) return _reused[shard].TryGetValue((entry.Begin, entry.End), out var reused) ? reused : null;
            if (_manifest.Tensors.TryGetValue(entry.Key, out var plain) && plain.Shard == shard && plain.Encoding is null) return (entry.Key, plain);
            // An encoded tensor's bytes are listed under its key marked with the encoding.
            return ShardEncoding.TensorKeyOf(entry.Key) is { } key && _manifest.Tensors.TryGetValue(key, out var info) && info.Shard == shard && info.Encoding is { } encoding
                && entry.Key == ShardEncoding.StoredKey(key, encoding) ? (key, info) : null;
        }
    }

    /// <summary>
    /// Reads the shards (several at once, each through parallel ranged reads: <see cref="RangedShardReader"/>), verifying each:
    /// lengths, headers against the index, checksums, and the content hash of every tensor taken from a reused shard. With
    /// <c>blockSourcesToo</c>, also the shards that only block-mapped tensors' maps name (no index entry points into them): a
    /// verify reads them whole; a load need not, since it reads only the blocks it uses, checks each against the hash beside
    /// it, and the tensor against its own.
    /// </summary>
    private static async Task ReadShardsAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest,
        Func<string, TensorInfo, TensorDType, ITensorTarget?> targetFor, IProgress<long>? progress, int maxParallel, int parallelReads, bool blockSourcesToo, CancellationToken ct)
    {
        var index = new ShardIndex(manifest, checkpointKey);
        var seen = new ConcurrentDictionary<string, byte>(StringComparer.Ordinal);
        var indexed = manifest.Tensors.Values.Select(t => t.Shard).ToHashSet();
        var shards = Enumerable.Range(0, manifest.Shards.Count).Where(shard => blockSourcesToo || indexed.Contains(shard));
        await Parallel.ForEachAsync(shards, new ParallelOptions { MaxDegreeOfParallelism = maxParallel, CancellationToken = ct }, async (shardIndex, token) =>
        {
            var shard = manifest.Shards[shardIndex];
            var reused = shard.Checkpoint is not null;
            var key = await PresentShardAsync(store, checkpointKey, manifest, shardIndex, token).ConfigureAwait(false);
            await RangedShardReader.ReadAsync(store, key, shard.Bytes, shard.Checksum, e =>
            {
                if (index.Find(shardIndex, e) is not { } indexed)
                {
                    if (reused) return null; // bytes of the earlier checkpoint that this one does not use
                    throw new CheckpointFormatException(key, "index", $"tensor '{e.Key}' is in the shard but not indexed to it by the manifest");
                }
                var (tensorKey, info) = indexed;
                if (!ShardEncoding.HeaderMatches(info, e))
                    throw new CheckpointFormatException(key, "index", $"tensor '{e.Key}' is {e.DType}[{string.Join(", ", e.Shape)}] at [{e.Begin}, {e.End}) in the shard but the manifest indexes '{tensorKey}' there as {info.DType}[{string.Join(", ", info.Shape)}]{(info.Encoding is null ? "" : $" encoded {info.Encoding}")} at [{info.DataOffsets[0]}, {info.DataOffsets[1]})");
                seen[tensorKey] = 0;
                TensorDTypes.TryParse(info.DType, out var dtype);
                var target = targetFor(tensorKey, info, dtype);
                // A compressed tensor is decoded and checked against its hash before its target sees a byte.
                if (info.Encoding == BytegroupCodec.Name) return ShardEncoding.Decoding(target, info, key, tensorKey);
                return reused && info.Hash is { } hash ? TensorHash.Checking(target, e.ByteLength, hash, key, tensorKey) : target;
            }, progress, parallelReads, token, store.PreferredReadBytes).ConfigureAwait(false);
        }).ConfigureAwait(false);
        var absent = manifest.Tensors.Keys.FirstOrDefault(k => !seen.ContainsKey(k));
        if (absent is not null)
            throw new CheckpointFormatException(StoreLayout.ShardKey(checkpointKey, manifest.Shards[manifest.Tensors[absent].Shard]), "index", $"tensor '{absent}' is indexed but not in its shard");
    }
}
