using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Writes a native checkpoint (docs/format.md#native-checkpoint-layout) into a store: shards first, each under a name unique
/// to this attempt, then manifest.json, whose atomic appearance is the commit. Re-saving an
/// existing name never touches the shards its current manifest points to.
/// </summary>
public static class NativeCheckpointWriter
{
    /// <summary>
    /// Writes <paramref name="state"/> as checkpoint <paramref name="checkpointKey"/> and returns its manifest once committed.
    /// A save that fails before the manifest is in place deletes the shards it wrote (best effort) and leaves any checkpoint
    /// already under that key as it was; after the commit, shards of earlier attempts at the key are removed unless
    /// <see cref="NativeWriteOptions.ReferencedElsewhere"/> keeps them.
    /// </summary>
    /// <param name="store">where the checkpoint is written</param>
    /// <param name="checkpointKey">the store key of the checkpoint's folder</param>
    /// <param name="identity">the run, name, iteration and world size the manifest records; the name must be a valid checkpoint name</param>
    /// <param name="state">the state tree (the value model of <see cref="StateTree"/>, with <see cref="TensorParts"/> for sharded tensors)</param>
    /// <param name="asTensor">returns the tensor behind any leaf that is not a plain value (null: not a tensor, which is refused)</param>
    /// <param name="options">shards, parallelism, progress and reuse; null: one shard, no reuse</param>
    /// <param name="cancellationToken">cancels the save; before the commit, the shards written so far are deleted</param>
    /// <exception cref="ArgumentException">The key or name is invalid, an option is out of range (or block reuse asked for without reuse), a state value cannot be stored, or a sharded tensor misses chunks.</exception>
    /// <exception cref="ForeignContentException">The folder holds objects that no checkpoint of ours would hold.</exception>
    public static async Task<CheckpointManifest> WriteAsync(ICheckpointStore store, string checkpointKey, CheckpointIdentity identity,
        IReadOnlyDictionary<string, object?> state, Func<object, ITensorSource?> asTensor, NativeWriteOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        options ??= new NativeWriteOptions();
        StoreKey.Validate(checkpointKey);
        CheckpointName.Validate(identity.Name);
        if (options.ShardCount < 1) throw new ArgumentOutOfRangeException(nameof(options), options.ShardCount, "ShardCount must be at least 1");
        if (options.MaxParallelShards < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxParallelShards, "MaxParallelShards must be at least 1");
        if (options.BlockReuse is not null && options.ReuseFrom is null) throw new ArgumentException("BlockReuse is part of incremental saves: set ReuseFrom too (an empty list when there is nothing to build on).", nameof(options));
        options.BlockReuse?.Validate();

        var foreign = await CheckpointFiles.ForeignKeysAsync(store, checkpointKey, cancellationToken).ConfigureAwait(false);
        if (foreign.Count > 0) throw new ForeignContentException($"{checkpointKey} in {store.Description}", foreign);

        var (stateJson, flattened) = StateTree.Flatten(state, asTensor);
        var tensors = ShardedTensors.Apply(flattened, options.Layouts);
        var sharded = ShardedTensors.Describe(tensors);
        if (ShardedTensorCheck.Problem(ShardedTensors.Unwritten(tensors), sharded) is { } problem)
            throw new ArgumentException($"Checkpoint {identity.Name} cannot be written: {problem}. A save into one checkpoint needs every chunk of a sharded tensor; ranks that each hold a slice save together in cluster mode.", nameof(state));
        // A sharded checkpoint hashes every tensor: a load into another layout reads ranges, not whole shards, and checks each tensor or chunk it reads whole.
        var hashes = TensorHash.All(options.ReuseFrom is not null || sharded.Count > 0 ? tensors : []);
        var blocks = options is { ReuseFrom: { } earlier, BlockReuse: { } blockReuse }
            ? await BlockPlanner.PlanAsync(store, checkpointKey, earlier, tensors, hashes, blockReuse, cancellationToken).ConfigureAwait(false)
            : BlockPlanner.Plan.None;
        var wholes = tensors.Where(t => !blocks.Entries.ContainsKey(t.Key)).ToList();
        var reused = options.ReuseFrom is null ? [] : await ReusableBytes.ClaimAsync(store, checkpointKey, options.ReuseFrom!, wholes, hashes, sameKeyOnly: false, cancellationToken).ConfigureAwait(false);
        var toWrite = tensors.Where(t => !reused.ContainsKey(t.Key)).Select(blocks.Stored).ToList();
        // Never more shards than tensors: an empty shard would carry no information.
        var plan = toWrite.Count == 0 ? [] : ShardPlanner.Split(toWrite, Math.Min(options.ShardCount, toWrite.Count), t => t.Key, t => t.ByteLength);
        var attempt = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4));
        var written = await WriteShardsAsync(store, checkpointKey, plan, attempt, options, hashes, blocks.Encoded, cancellationToken).ConfigureAwait(false);
        var builder = new ManifestBuilder(written.Select(w => w.Info));
        for (var i = 0; i < written.Length; i++)
        {
            foreach (var (key, info) in written[i].Shard.Index(i, hashes)) builder.TryAdd(key, info);
        }
        foreach (var (key, bytes) in reused) builder.TryAddReused(key, bytes.Tensor, bytes.Shard);
        foreach (var shard in blocks.Referenced) builder.AddReferenced(shard);
        // Keep the index in the state's order, which is the order users see in `ckpt inspect`.
        var manifest = builder.Build(identity, DateTimeOffset.UtcNow, stateJson, sharded, tensors.Select(t => t.Key));
        try
        {
            var manifestBytes = ManifestBuilder.Serialize(manifest, checkpointKey); // never commit a manifest no reader accepts
            await store.WriteAsync(StoreLayout.ManifestKey(checkpointKey), (s, ct) => s.WriteAsync(manifestBytes, ct).AsTask(), cancellationToken).ConfigureAwait(false);
        }
        catch
        {
            // The write may have failed after its commit (a folder fsync, a lost reply): then the manifest in place references these shards.
            var mine = written.Select(w => w.Info).ToList(); // never the reused shards: other checkpoints own them
            if (!await IsCommittedAsync(store, checkpointKey, mine).ConfigureAwait(false)) await DeleteShardsAsync(store, checkpointKey, mine).ConfigureAwait(false);
            throw;
        }
        await DeleteUnreferencedAsync(store, checkpointKey, manifest, options.ReferencedElsewhere, cancellationToken).ConfigureAwait(false);
        return manifest;
    }

    /// <summary>
    /// Writes shard i of <paramref name="plan"/> as shard i, up to <see cref="NativeWriteOptions.MaxParallelShards"/>
    /// at once. On the first failure the others are cancelled; once every shard has stopped, all those
    /// that were written (also any that finished after the failure) are deleted and that failure is thrown.
    /// </summary>
    private static async Task<WrittenShard[]> WriteShardsAsync(ICheckpointStore store, string checkpointKey,
        IReadOnlyList<IReadOnlyList<NamedTensor>> plan, string attempt, NativeWriteOptions options, IReadOnlyDictionary<string, string> hashes,
        IReadOnlyDictionary<string, EncodedTensor> blockMapped, CancellationToken cancellationToken)
    {
        var written = new WrittenShard?[plan.Count];
        var progress = options.Progress is null ? null : new SerializedProgress(options.Progress);
        var workerCount = Math.Min(plan.Count, options.MaxParallelShards ?? Environment.ProcessorCount);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Exception? firstFailure = null;
        var next = -1;

        async Task WorkAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                var i = Interlocked.Increment(ref next);
                if (i >= plan.Count) return;
                try
                {
                    var path = StoreLayout.ShardName(i, plan.Count, attempt);
                    // A shard's serialization is long synchronous work (the store calls the writer inline): on a thread
                    // of its own, started here rather than queued to the pool, which a busy pool hands out late
                    // (seen: four shards one after another, and a worker not started for 30 s under a loaded test run).
                    var shard = await Task.Factory.StartNew(() => StoredShard.WriteAsync(store, StoreLayout.FileKey(checkpointKey, path), plan[i], progress, stop.Token, options.Compression, hashes, blockMapped),
                        stop.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default).Unwrap().ConfigureAwait(false);
                    written[i] = new WrittenShard(new ShardInfo(path, shard.Length, shard.Checksum), shard);
                }
                catch (Exception e)
                {
                    Interlocked.CompareExchange(ref firstFailure, e, null);
                    await stop.CancelAsync().ConfigureAwait(false);
                }
            }
        }

        // Every worker starts its first shard before this returns: none waits for a pool thread.
        var workers = Enumerable.Range(0, workerCount).Select(_ => WorkAsync()).ToArray();
        await Task.WhenAll(workers).ConfigureAwait(false);
        if (firstFailure is null && written.All(w => w is not null)) return written.Select(w => w!).ToArray();

        await DeleteShardsAsync(store, checkpointKey, written.OfType<WrittenShard>().Select(w => w.Info).ToList()).ConfigureAwait(false);
        if (firstFailure is not null) ExceptionDispatchInfo.Throw(firstFailure);
        throw new OperationCanceledException(cancellationToken); // cancelled between two shards: nothing failed, but not every shard was written
    }

    private sealed record WrittenShard(ShardInfo Info, StoredShard Shard);

    /// <summary>
    /// A save that failed (disk full, storage down) removes the shards it wrote: without a manifest
    /// nothing references them. Best effort: the save's own failure is what the caller must see.
    /// </summary>
    private static async Task DeleteShardsAsync(ICheckpointStore store, string checkpointKey, List<ShardInfo> shards)
    {
        foreach (var shard in shards)
        {
            try
            {
                await store.DeleteAsync(StoreLayout.FileKey(checkpointKey, shard.Path), CancellationToken.None).ConfigureAwait(false);
            }
            catch (Exception)
            {
                // The store is failing too (any store's exception types): the leftover shard is collected at a later save.
            }
        }
    }

    /// <summary>Whether the manifest now in the store references this attempt's shards; true when that cannot be told, so they are kept.</summary>
    private static async Task<bool> IsCommittedAsync(ICheckpointStore store, string checkpointKey, List<ShardInfo> shards)
    {
        try
        {
            var manifest = await NativeCheckpointReader.ReadManifestAsync(store, checkpointKey, CancellationToken.None).ConfigureAwait(false);
            return manifest.Shards.Any(s => shards.Any(mine => mine.Path == s.Path));
        }
        catch (CheckpointNotFoundException)
        {
            return false;
        }
        catch (CheckpointFormatException)
        {
            return false; // not ours: a manifest this attempt wrote parses
        }
        catch (Exception)
        {
            return true; // the store is failing too: keeping the shards is safe, a later save collects them
        }
    }

    /// <summary>
    /// Removes shards of earlier attempts at the same name (crashed or superseded) once the new manifest is in place,
    /// except those other checkpoints reference.
    /// </summary>
    private static Task DeleteUnreferencedAsync(ICheckpointStore store, string checkpointKey, CheckpointManifest manifest, Func<string, bool>? referencedElsewhere, CancellationToken ct)
    {
        var keep = manifest.Shards.Where(s => s.Checkpoint is null).Select(s => s.Path).ToHashSet(StringComparer.Ordinal);
        return CheckpointFiles.DeleteShardsAsync(store, checkpointKey, file => !keep.Contains(file) && referencedElsewhere?.Invoke(StoreLayout.FileKey(checkpointKey, file)) != true, ct);
    }
}
