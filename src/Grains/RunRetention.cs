using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// Retention by reference for one run: what the run retains, which checkpoints max_to_keep evicts, and which files a
/// checkpoint leaving the catalog frees now and which it must hold because retained incremental checkpoints reuse them
/// (docs/format.md). Changes only the run's state (<see cref="RunState.Deletions"/>, <see cref="RunState.Held"/>) and
/// catalog; writing them is the grain's job.
/// </summary>
internal sealed class RunRetention(IPersistentState<RunState> state, RunCatalog catalog, RunId run)
{
    private RunState State => state.State;

    /// <summary>What the tenant's quota counts: the catalog's bytes and the shards held for incremental checkpoints.</summary>
    public long RetainedBytes => catalog.Bytes + HeldBytes;

    /// <summary>Bytes of the shards held for incremental checkpoints after their own checkpoints left the catalog.</summary>
    public long HeldBytes => State.Held.Sum(h => h.Bytes);

    /// <summary>"holder/shard" (<see cref="StoreLayout.ReusedShard"/>) of every shard that a retained incremental checkpoint reuses.</summary>
    public HashSet<string> ReusedShards() => catalog.Entries.SelectMany(c => c.Reuses ?? []).ToHashSet(StringComparer.Ordinal);

    /// <summary>Whether a shard of checkpoint <paramref name="name"/> is held for incremental checkpoints.</summary>
    public bool IsHeld(string name, string shardPath) => State.Held.Any(h => h.Name == name && h.Paths.Contains(shardPath));

    /// <summary>
    /// Refuses a commit that reuses a shard which is not stored any more: one of a retained checkpoint's own
    /// attempt, or one still held for other incremental checkpoints. (The rank read an older manifest.)
    /// </summary>
    public void ThrowIfNotStored(string name, IReadOnlyList<string> reuses)
    {
        foreach (var reuse in reuses)
        {
            var (holder, path) = StoreLayout.ParseReusedShard(reuse);
            var stored = catalog.Find(holder) is { } c && StoreLayout.AttemptOf(path) == c.AttemptId || IsHeld(holder, path);
            if (!stored) throw new RunRefusedException($"Checkpoint {name} of {run} reuses shard {path} of checkpoint {holder}, which is no longer stored; save it again.");
        }
    }

    /// <summary>Applies max_to_keep (<see cref="PeriodicPolicy.Evictions"/>): the evicted checkpoints leave the catalog and are released.</summary>
    public IReadOnlyList<CheckpointRecord> Evict()
    {
        var evicted = State.Policy.Evictions(catalog.Entries.Select(c => c.Name), State.LastCheckpoint).Select(name => catalog.Find(name)!).ToList();
        foreach (var record in evicted)
        {
            catalog.Remove(record);
            Release(record, includesManifest: true);
        }
        return evicted;
    }

    /// <summary>
    /// A checkpoint leaves the catalog (evicted, or replaced by a new save of its name): its files are owed a
    /// deletion, except the shards retained incremental checkpoints reuse, which are held until nothing does.
    /// </summary>
    public void Release(CheckpointRecord gone, bool includesManifest)
    {
        var folder = StoreLayout.CheckpointKey(run.StorePrefix, gone.Name);
        var reused = ReusedShards();
        var shards = Enumerable.Range(0, gone.WorldSize).Select(rank => StoreLayout.ShardName(rank, gone.WorldSize, gone.AttemptId)).ToList();
        var held = shards.Where(path => reused.Contains(StoreLayout.ReusedShard(gone.Name, path))).ToList();
        if (held.Count == 0)
        {
            State.Deletions.Add(new PendingDeletion(folder, gone.AttemptId, gone.WorldSize, includesManifest));
            return;
        }
        var now = shards.Except(held).Select(path => StoreLayout.FileKey(folder, path));
        if (includesManifest) now = now.Prepend(StoreLayout.ManifestKey(folder));
        State.Deletions.Add(new PendingDeletion(folder, gone.AttemptId, gone.WorldSize, Keys: now.ToList()));
        State.Held.Add(new HeldShards(gone.Name, gone.AttemptId, gone.Bytes, held));
    }

    /// <summary>Held shards that no retained checkpoint reuses any more are owed a deletion; a fully released hold goes.</summary>
    public void ReleaseUnreferencedHeld()
    {
        if (State.Held.Count == 0) return;
        var reused = ReusedShards();
        foreach (var hold in State.Held.ToList())
        {
            var freed = hold.Paths.Where(path => !reused.Contains(StoreLayout.ReusedShard(hold.Name, path))).ToList();
            if (freed.Count == 0) continue;
            var folder = StoreLayout.CheckpointKey(run.StorePrefix, hold.Name);
            State.Deletions.Add(new PendingDeletion(folder, hold.AttemptId, Keys: freed.Select(path => StoreLayout.FileKey(folder, path)).ToList()));
            State.Held.Remove(hold);
            if (freed.Count < hold.Paths.Count) State.Held.Add(hold with { Paths = hold.Paths.Except(freed).ToList() });
        }
    }

    /// <summary>An abandoned attempt's shards are owed a deletion (its manifest was never written).</summary>
    public void ReleaseAbandoned(PendingCheckpoint pending) =>
        State.Deletions.Add(new PendingDeletion(StoreLayout.CheckpointKey(run.StorePrefix, pending.Name), pending.AttemptId, pending.WorldSize));
}
