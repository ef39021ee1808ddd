using System.Text.RegularExpressions;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// The names a native checkpoint folder may hold (DESIGN.md §5): <c>manifest.json</c> and shards
/// <c>shard-IIIII-of-NNNNN-ATTEMPT.safetensors</c>. Deletion goes only by these names, so a
/// store never deletes an object that a checkpoint of ours does not account for.
/// </summary>
public static partial class CheckpointFiles
{
    [GeneratedRegex("^shard-[0-9]{5}-of-[0-9]{5}-(?<attempt>[0-9a-f]{8})\\.safetensors$", RegexOptions.CultureInvariant)]
    private static partial Regex ShardPattern();

    public static string ShardName(int index, int count, string attempt) => $"shard-{index:D5}-of-{count:D5}-{attempt}.safetensors";

    /// <summary>The attempt id of a shard file name, or null when the name is not one of our shards.</summary>
    public static string? AttemptOf(string fileName) => ShardPattern().Match(fileName) is { Success: true } m ? m.Groups["attempt"].Value : null;

    public static bool IsShard(string fileName) => ShardPattern().IsMatch(fileName);

    /// <summary>True for a name a native checkpoint folder may hold.</summary>
    public static bool IsOurs(string fileName) => fileName == ManifestJson.FileName || IsShard(fileName);

    /// <summary>
    /// Where a manifest's shard is stored: in the checkpoint's own folder, or, for a shard an incremental
    /// checkpoint reuses, in the folder of the earlier checkpoint <see cref="ShardInfo.Checkpoint"/> beside it.
    /// </summary>
    public static string ShardKey(string checkpointKey, ShardInfo shard) =>
        shard.Checkpoint is null ? $"{checkpointKey}/{shard.Path}" : $"{SiblingKey(checkpointKey, shard.Checkpoint)}/{shard.Path}";

    /// <summary>The key of checkpoint <paramref name="name"/> in the same run (folder) as <paramref name="checkpointKey"/>.</summary>
    public static string SiblingKey(string checkpointKey, string name)
    {
        var slash = checkpointKey.LastIndexOf('/');
        return slash < 0 ? name : $"{checkpointKey[..(slash + 1)]}{name}";
    }

    /// <summary>The key of the run (folder) that holds <paramref name="checkpointKey"/>: "" for a checkpoint at the store's root.</summary>
    public static string RunPrefix(string checkpointKey)
    {
        var slash = checkpointKey.LastIndexOf('/');
        return slash < 0 ? "" : checkpointKey[..(slash + 1)];
    }

    /// <summary>The file name of a key directly inside <paramref name="checkpointKey"/>, or null when the key is deeper or elsewhere.</summary>
    public static string? FileIn(string checkpointKey, string key) =>
        key.Length > checkpointKey.Length + 1 && key.StartsWith(checkpointKey, StringComparison.Ordinal) && key[checkpointKey.Length] == '/'
        && key.IndexOf('/', checkpointKey.Length + 1) < 0
            ? key[(checkpointKey.Length + 1)..]
            : null;

    /// <summary>Keys under <paramref name="checkpointKey"/>/ that no checkpoint of ours would hold (sub-folders count as foreign).</summary>
    public static async Task<IReadOnlyList<string>> ForeignKeysAsync(ICheckpointStore store, string checkpointKey, CancellationToken ct = default)
    {
        var foreign = new List<string>();
        await foreach (var entry in store.ListAsync(StoreKey.Validate(checkpointKey) + "/", ct).ConfigureAwait(false))
        {
            if (FileIn(checkpointKey, entry.Key) is not { } file || !IsOurs(file)) foreign.Add(entry.Key);
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
        var deleted = await store.DeleteAsync($"{StoreKey.Validate(checkpointKey)}/{ManifestJson.FileName}", ct).ConfigureAwait(false) ? 1 : 0;
        return deleted + await DeleteShardsAsync(store, checkpointKey, _ => true, ct).ConfigureAwait(false);
    }

    /// <summary>File names of the shards directly in <paramref name="checkpointKey"/>/.</summary>
    public static async IAsyncEnumerable<string> ShardFilesAsync(ICheckpointStore store, string checkpointKey, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct = default)
    {
        await foreach (var entry in store.ListAsync(StoreKey.Validate(checkpointKey) + "/", ct).ConfigureAwait(false))
        {
            if (FileIn(checkpointKey, entry.Key) is { } file && IsShard(file)) yield return file;
        }
    }

    /// <summary>Deletes the shards directly in <paramref name="checkpointKey"/>/ whose file name <paramref name="garbage"/> selects; returns how many.</summary>
    public static async Task<int> DeleteShardsAsync(ICheckpointStore store, string checkpointKey, Func<string, bool> garbage, CancellationToken ct = default)
    {
        var doomed = await ShardFilesAsync(store, checkpointKey, ct).Where(garbage).ToListAsync(ct).ConfigureAwait(false);
        foreach (var file in doomed) await store.DeleteAsync($"{checkpointKey}/{file}", ct).ConfigureAwait(false);
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
            var file = FileIn(checkpointKey, entry.Key);
            if (file == ManifestJson.FileName) hasManifest = true;
            else if (file is not null && AttemptOf(file) is { } attempt)
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
            file => old.Contains(file) && !referenced.Contains(file) && elsewhere?.Contains($"{checkpointKey}/{file}") != true, ct).ConfigureAwait(false);
    }
}

/// <summary>A destination holds objects that are not part of a checkpoint of ours; writing there is refused so nothing of the user's is touched.</summary>
public sealed class ForeignContentException(string destination, IReadOnlyList<string> foreign)
    : InvalidOperationException($"{destination} holds {foreign.Count} file(s) that are not part of a checkpoint (e.g. {string.Join(", ", foreign.Take(3))}); " +
        "refusing to write a checkpoint there. Choose an empty or new folder.")
{
    public IReadOnlyList<string> Foreign { get; } = foreign;
}
