using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// The committed checkpoints of one run (the checkpoint folders directly under a run prefix), and the
/// shards their manifests reference: with incremental checkpoints a shard may be referenced from other
/// folders than its own, so whether it may be deleted is a question about the whole run.
/// </summary>
public static class RunCheckpoints
{
    /// <summary>Every committed checkpoint under <paramref name="runPrefix"/> ("" or ending in '/').</summary>
    public static async Task<RunSnapshot> ReadCommittedAsync(ICheckpointStore store, string runPrefix, CancellationToken ct = default)
    {
        var names = new List<string>();
        await foreach (var entry in store.ListAsync(runPrefix, ct).ConfigureAwait(false))
        {
            var rest = entry.Key[runPrefix.Length..].Split('/');
            if (rest is [var name, ManifestJson.FileName] && CheckpointName.IsValid(name)) names.Add(name);
        }
        var committed = new List<EarlierCheckpoint>(names.Count);
        var unreadable = new List<string>();
        foreach (var name in names.Order(StringComparer.Ordinal))
        {
            try
            {
                committed.Add(new EarlierCheckpoint(name, await NativeCheckpointReader.ReadManifestAsync(store, runPrefix + name, ct).ConfigureAwait(false)));
            }
            catch (CheckpointNotFoundException)
            {
                // deleted since it was listed
            }
            catch (Exception e) when (e is CheckpointFormatException or IOException or UnauthorizedAccessException)
            {
                unreadable.Add(name);
            }
        }
        return new RunSnapshot(committed, unreadable);
    }

    /// <summary>The store keys of every shard that <paramref name="checkpoints"/> reference, in their own folders or reused from others.</summary>
    public static HashSet<string> ReferencedShardKeys(string runPrefix, IEnumerable<EarlierCheckpoint> checkpoints)
    {
        var keys = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, manifest) in checkpoints)
        {
            foreach (var shard in manifest.Shards) keys.Add(StoreLayout.ShardKey(runPrefix + name, shard));
        }
        return keys;
    }
}
