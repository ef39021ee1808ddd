using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// A run's storage garbage collection. Owed deletions (<see cref="RunState.Deletions"/>) run after the acknowledgement,
/// a pass at a time, on the grain's scheduler; an entry leaves the owed list only when its deletion finished, and the
/// list is saved with the next state write, so a crash repeats deletions (they are idempotent), never skips one.
/// A deletion never takes a live checkpoint's files: the manifest only while no committed or pending checkpoint has the
/// name, shards only of attempts that are not live and not held for incremental checkpoints.
/// </summary>
internal sealed class RunJanitor(ICheckpointStore store, RunId run, IPersistentState<RunState> state, RunCatalog catalog, RunRetention retention,
    Action deleted, ILogger logger)
{
    /// <summary>Store requests in flight at once for one batch of work (a state saved before world sizes were bounded may name a million ranks).</summary>
    public const int StoreRequestsInFlight = 32;

    private Task _pass = Task.CompletedTask;
    private HashSet<string> _folders = [];

    private RunState State => state.State;

    /// <summary>Starts a pass over the owed deletions unless one is running (the sweep starts the next).</summary>
    public void StartOwed()
    {
        var owed = State.Deletions;
        if (!_pass.IsCompleted || owed.Count == 0) return;
        var batch = owed.ToList();
        _folders = batch.Select(d => d.CheckpointPrefix).ToHashSet(StringComparer.Ordinal);
        _pass = RunPassAsync(owed, batch);
    }

    /// <summary>Waits for the running pass if it touches <paramref name="folder"/> (any pass when null); its failures are the pass's to log.</summary>
    public async Task WaitForAsync(string? folder)
    {
        if (_pass.IsCompleted || (folder is not null && !_folders.Contains(folder))) return;
        try { await _pass; }
        catch { /* logged by the pass */ }
    }

    private async Task RunPassAsync(List<PendingDeletion> owed, List<PendingDeletion> batch)
    {
        await Task.Yield(); // the acknowledgement goes out first
        foreach (var chunk in batch.Chunk(16))
        {
            await Task.WhenAll(chunk.Select(async deletion =>
            {
                try
                {
                    await DeleteOwedAsync(deletion);
                    owed.Remove(deletion);
                    deleted();
                }
                catch (Exception e)
                {
                    logger.LogWarning(e, "Run {Run}: deleting {Prefix} failed; the sweep retries", run, deletion.CheckpointPrefix);
                }
            }));
        }
    }

    private async Task DeleteOwedAsync(PendingDeletion deletion)
    {
        var name = StoreLayout.NameOf(deletion.CheckpointPrefix);
        var live = catalog.Find(name);
        var livePending = State.Pending.GetValueOrDefault(name);
        if (deletion.Keys is { } keys)
        {
            await DeleteKeysAsync(deletion.CheckpointPrefix, name, keys, live, livePending);
            return;
        }
        if (deletion.WorldSize is not { } worldSize)
        {
            await DeleteListedAsync(deletion, live, livePending);
            return;
        }
        if (deletion.AttemptId == live?.AttemptId || deletion.AttemptId == livePending?.AttemptId) return;
        if (deletion.IncludesManifest && live is null && livePending is null)
            await store.DeleteAsync(StoreLayout.ManifestKey(deletion.CheckpointPrefix)); // first: the checkpoint is gone before its shards go
        foreach (var ranks in Enumerable.Range(0, worldSize).Chunk(StoreRequestsInFlight))
        {
            await Task.WhenAll(ranks.Select(rank => store.DeleteAsync(StoreLayout.ShardKey(deletion.CheckpointPrefix, rank, worldSize, deletion.AttemptId!))));
        }
    }

    /// <summary>Exactly the keys of a deletion that released part of a checkpoint, each only if nothing live needs it now.</summary>
    private async Task DeleteKeysAsync(string folder, string name, IReadOnlyList<string> keys, CheckpointRecord? live, PendingCheckpoint? livePending)
    {
        var reused = retention.ReusedShards();
        foreach (var key in keys)
        {
            if (StoreLayout.FileIn(folder, key) is not { } file) continue;
            if (file == StoreLayout.ManifestFileName)
            {
                if (live is null && livePending is null) await store.DeleteAsync(key);
                continue;
            }
            var attempt = StoreLayout.AttemptOf(file);
            if (attempt is null || attempt == live?.AttemptId || attempt == livePending?.AttemptId) continue;
            if (reused.Contains(StoreLayout.ReusedShard(name, file)) || retention.IsHeld(name, file)) continue;
            await store.DeleteAsync(key);
        }
    }

    /// <summary>Deletions recorded by the first release name no world size: list the folder.</summary>
    private async Task DeleteListedAsync(PendingDeletion deletion, CheckpointRecord? live, PendingCheckpoint? livePending)
    {
        await foreach (var entry in store.ListAsync(deletion.CheckpointPrefix + "/"))
        {
            if (StoreLayout.FileIn(deletion.CheckpointPrefix, entry.Key) is not { } file || !StoreLayout.IsOurs(file)) continue;
            var fileAttempt = StoreLayout.AttemptOf(file);
            if (deletion.AttemptId is { } attempt && fileAttempt != attempt) continue;
            if (live is not null && (file == StoreLayout.ManifestFileName || fileAttempt == live.AttemptId)) continue;
            if (livePending is not null && (file == StoreLayout.ManifestFileName || fileAttempt == livePending.AttemptId)) continue;
            await store.DeleteAsync(entry.Key);
        }
    }

    /// <summary>
    /// Finishes owed deletions, then deletes the shards killed ranks left under the run prefix: those of
    /// attempts that are neither committed nor pending (they can never be reported now) and that their
    /// folder's manifest does not reference. Manifests are never deleted here: one the catalog does not
    /// know (lost grain state, a commit that crashed before its state was saved) is a checkpoint someone
    /// may load, so it is kept and logged. Best effort: the new epoch is already saved, so a storage
    /// error is logged rather than failing the attempt; the sweep and the next attempt try again.
    /// </summary>
    public async Task CleanUpForNewAttemptAsync()
    {
        try
        {
            StartOwed();
            await WaitForAsync(null);
            var collected = 0;
            foreach (var name in await CheckpointFoldersAsync()) collected += await CollectOrphansAsync(name);
            if (collected > 0) logger.LogInformation("Run {Run}: collected {Count} orphan shard(s) of interrupted saves", run, collected);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: cleaning up after earlier attempts failed; it is retried later", run);
        }
    }

    /// <summary>Deletes every checkpoint folder of the run (the run is being deleted); returns how many objects went.</summary>
    public async Task<int> DeleteEverythingAsync()
    {
        await WaitForAsync(null);
        var deletedObjects = 0;
        foreach (var name in await CheckpointFoldersAsync())
            deletedObjects += await CheckpointFiles.DeleteCheckpointAsync(store, StoreLayout.CheckpointKey(run.StorePrefix, name));
        return deletedObjects;
    }

    private async Task<int> CollectOrphansAsync(string name)
    {
        var folder = StoreLayout.CheckpointKey(run.StorePrefix, name);
        var committed = catalog.Find(name);
        if (committed is null && await store.GetEntryAsync(StoreLayout.ManifestKey(folder)) is not null)
            logger.LogWarning("Run {Run}: {Folder} holds a manifest the catalog does not know (lost grain state or an interrupted commit); it and its shards are kept", run, folder);
        string[] live = [.. new[] { committed?.AttemptId, State.Pending.GetValueOrDefault(name)?.AttemptId }.OfType<string>(),
            .. State.Held.Where(h => h.Name == name).Select(h => h.AttemptId)];
        // Blob timestamps need no minimum age: every rank of an earlier attempt is fenced off by the new epoch.
        return await CheckpointFiles.DeleteOrphanShardsAsync(store, folder, TimeSpan.Zero, live);
    }

    /// <summary>Names of the checkpoint folders under the run prefix, committed or not.</summary>
    private async Task<SortedSet<string>> CheckpointFoldersAsync()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var entry in store.ListAsync(run.StorePrefix + "/"))
        {
            if (StoreLayout.FolderUnder(run.StorePrefix, entry.Key) is { } name) names.Add(name);
        }
        return names;
    }
}
