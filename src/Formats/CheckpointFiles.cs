using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Store operations on checkpoint folders that go only by the names <see cref="StoreLayout"/> defines, so a store never
/// deletes an object that a checkpoint of ours does not account for.
/// </summary>
public static class CheckpointFiles
{
    /// <summary>Keys under <paramref name="checkpointKey"/>/ that no checkpoint of ours would hold (sub-folders count as foreign).</summary>
    public static async Task<IReadOnlyList<string>> ForeignKeysAsync(ICheckpointStore store, string checkpointKey, CancellationToken ct = default)
    {
        var foreign = new List<string>();
        await foreach (var entry in store.ListAsync(StoreKey.Validate(checkpointKey) + "/", ct).ConfigureAwait(false))
        {
            if (StoreLayout.FileIn(checkpointKey, entry.Key) is not { } file || !StoreLayout.IsOurs(file)) foreign.Add(entry.Key);
        }
        return foreign;
    }

    /// <summary>
    /// Deletes checkpoint <paramref name="checkpointKey"/>: its manifest first (so a crash midway never
    /// leaves a manifest without its shards), then its shards. Anything else in the folder is left
    /// alone. Returns how many objects were deleted.
    /// </summary>
    public static async Task<int> DeleteCheckpointAsync(ICheckpointStore store, string checkpointKey, CancellationToken ct = default)
    {
        var deleted = await store.DeleteAsync(StoreLayout.ManifestKey(StoreKey.Validate(checkpointKey)), ct).ConfigureAwait(false) ? 1 : 0;
        return deleted + await DeleteShardsAsync(store, checkpointKey, _ => true, ct).ConfigureAwait(false);
    }

    /// <summary>File names of the shards directly in <paramref name="checkpointKey"/>/.</summary>
    public static async IAsyncEnumerable<string> ShardFilesAsync(ICheckpointStore store, string checkpointKey, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var entry in store.ListAsync(StoreKey.Validate(checkpointKey) + "/", ct).ConfigureAwait(false))
        {
            if (StoreLayout.FileIn(checkpointKey, entry.Key) is { } file && StoreLayout.IsShard(file)) yield return file;
        }
    }

    /// <summary>Deletes the shards directly in <paramref name="checkpointKey"/>/ whose file name <paramref name="garbage"/> selects; returns how many.</summary>
    public static async Task<int> DeleteShardsAsync(ICheckpointStore store, string checkpointKey, Func<string, bool> garbage, CancellationToken ct = default)
    {
        var doomed = await ShardFilesAsync(store, checkpointKey, ct).Where(garbage).ToListAsync(ct).ConfigureAwait(false);
        foreach (var file in doomed) await store.DeleteAsync(StoreLayout.FileKey(checkpointKey, file), ct).ConfigureAwait(false);
        return doomed.Count;
    }

    /// <summary>
    /// Collects what killed saves left in checkpoint <paramref name="checkpointKey"/>: shards its
    /// manifest does not reference, or every shard when it has no manifest. The caller must know
    /// that no save of this checkpoint is in flight other than those of <paramref name="liveAttempts"/>,
    /// whose shards are kept; shards modified less than <paramref name="minimumAge"/> ago are kept for
    /// writers that take no lock. A manifest that does not parse or cannot be read keeps everything.
    /// With <paramref name="referencedKeys"/> (every shard key the run's manifests reference, see
    /// <see cref="RunCheckpoints.ReferencedShardKeys"/>; asked for only when this folder has a shard to collect,
    /// null when unknown, which keeps everything), shards that incremental checkpoints reuse from this folder are
    /// kept too, also after its own manifest is gone.
    /// </summary>
    public static async Task<int> DeleteOrphanShardsAsync(ICheckpointStore store, string checkpointKey, TimeSpan minimumAge, IReadOnlyCollection<string>? liveAttempts = null,
        Func<Task<IReadOnlySet<string>?>>? referencedKeys = null, CancellationToken ct = default)
    {
        var attempts = new HashSet<string>(StringComparer.Ordinal);
        var old = new HashSet<string>(StringComparer.Ordinal);
        var hasManifest = false;
        await foreach (var entry in store.ListAsync(StoreKey.Validate(checkpointKey) + "/", ct).ConfigureAwait(false))
        {
            var file = StoreLayout.FileIn(checkpointKey, entry.Key);
            if (file == ManifestJson.FileName) hasManifest = true;
            else if (file is not null && StoreLayout.AttemptOf(file) is { } attempt)
            {
                attempts.Add(attempt);
                if (liveAttempts?.Contains(attempt) != true && DateTimeOffset.UtcNow - entry.LastModified >= minimumAge) old.Add(file);
            }
        }
        if (old.Count == 0) return 0;
        // One save writes all its shards under one attempt id and deletes other attempts' after its manifest:
        // a manifest beside the shards of a single attempt references exactly those, so it need not be read.
        if (hasManifest && attempts.Count == 1) return 0;

        HashSet<string> referenced;
        try
        {
            var manifest = await NativeCheckpointReader.ReadManifestAsync(store, checkpointKey, ct).ConfigureAwait(false);
            referenced = manifest.Shards.Where(s => s.Checkpoint is null).Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        }
        catch (CheckpointNotFoundException)
        {
            referenced = [];
        }
        catch (Exception e) when (e is CheckpointFormatException or IOException or UnauthorizedAccessException)
        {
            return 0; // e.g. a manifest that is a symbolic link, or one this process may not read
        }
        IReadOnlySet<string>? elsewhere = null;
        if (referencedKeys is not null && (elsewhere = await referencedKeys().ConfigureAwait(false)) is null) return 0;
        return await DeleteShardsAsync(store, checkpointKey,
            file => old.Contains(file) && !referenced.Contains(file) && elsewhere?.Contains(StoreLayout.FileKey(checkpointKey, file)) != true, ct).ConfigureAwait(false);
    }
}
