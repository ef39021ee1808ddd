using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Checkpointing.Formats;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// Cluster mode: the run grain owns the catalog, tag and retention; this rank streams only its
/// share of the tensors (the grain's save plan) straight into the blob store. Save is collective:
/// every rank of the world calls it for the same name, and it returns once the grain committed.
/// </summary>
public sealed class ClusterBackend(IGrainFactory grains, RunId run, ICheckpointStore store, int rank, int worldSize, long epoch) : ICheckpointBackend
{
    /// <summary>The prefix of the paths this backend hands out and resolves: <c>ckpt://tenant/run/NAME</c>.</summary>
    public const string Scheme = "ckpt://";

    /// <summary>This rank's side of the save protocol.</summary>
    public RankCommitter Committer { get; } = new(grains, run, store, rank, worldSize, epoch);

    /// <summary>The run this rank saves into and resumes from.</summary>
    public RunId Run => Committer.Run;
    /// <summary>This rank, 0 to <see cref="WorldSize"/> - 1; rank 0 sends the non-tensor state.</summary>
    public int Rank => Committer.Rank;
    /// <summary>How many ranks take part in every save.</summary>
    public int WorldSize => Committer.WorldSize;
    /// <summary>The job attempt this rank runs in (from <see cref="ICheckpointProtocol.StartAttempt"/>); once a newer one starts, the grain refuses this rank's calls (<see cref="StaleAttemptException"/>).</summary>
    public long Epoch => Committer.Epoch;
    /// <summary>The store this rank writes its shards to and loads checkpoints from (the data plane).</summary>
    public ICheckpointStore Store => Committer.Store;
    /// <summary>The run's grain (key <c>tenant/run</c>), the control plane.</summary>
    public ITrainingRunGrain Grain => Committer.Grain;

    /// <summary>Always true: the run grain applies max_to_keep after each commit, so the periodic checkpointer never deletes.</summary>
    public bool AppliesRetention => true;

    /// <summary>Each rank reuses the bytes of unchanged tensors from the run's last committed checkpoint (see <see cref="RankCommitter.Incremental"/>).</summary>
    public bool Incremental
    {
        get => Committer.Incremental;
        init => Committer.Incremental = value;
    }

    /// <summary>Each rank stores the tensors of its shard that get smaller compressed (see <see cref="RankCommitter.Compression"/>).</summary>
    public TensorCompression? Compression
    {
        get => Committer.Compression;
        init => Committer.Compression = value;
    }

    /// <summary>Each rank writes only the changed blocks of its large tensors (see <see cref="RankCommitter.BlockReuse"/>).</summary>
    public BlockReuse? BlockReuse
    {
        get => Committer.BlockReuse;
        init => Committer.BlockReuse = value;
    }

    /// <summary><c>ckpt://tenant/run/NAME</c>, which <see cref="ResolveAsync"/> turns back into the checkpoint's folder in the store.</summary>
    public string PathOf(string name) => $"{Scheme}{Run.Key}/{name}";

    /// <summary>
    /// Saves <paramref name="name"/> collectively through <see cref="Committer"/>: every rank of the world calls it with the same
    /// state; this rank writes only its share of the tensors (and its chunks of sharded ones, per <see cref="NativeWriteOptions.Layouts"/>),
    /// and only rank 0 sends the non-tensor state. Returns once the run grain committed the checkpoint (and moved the run's tag to it,
    /// unless the tag names a later iteration).
    /// </summary>
    /// <exception cref="TimeoutException">Not every rank reported within <see cref="RankCommitter.CommitTimeout"/>.</exception>
    /// <exception cref="StorageOutageException">The store stayed unavailable past <see cref="RankCommitter.OutageBudget"/>.</exception>
    /// <exception cref="RunRefusedException">The grain refused the save, e.g. <see cref="StaleAttemptException"/> or <see cref="TenantLimitException"/>.</exception>
    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null)
    {
        var (state, flattened) = StateTree.Flatten(data, TorchTensors.AsSource);
        var tensors = ShardedTensors.Apply(flattened, options.Layouts);
        await Committer.SaveAsync(name, iteration, tensors, Rank == 0 ? state.ToJsonString() : null, options.Progress, cancellationToken, stallSeconds).ConfigureAwait(false);
    }

    /// <summary>Tells the run grain that this rank loaded the checkpoint at <paramref name="checkpointKey"/>, for the run's history; tried again through failovers until the commit timeout.</summary>
    public Task RecordLoadAsync(string checkpointKey, double seconds, long bytes, CancellationToken cancellationToken) =>
        Transient.RetryAsync(() => Grain.RecordLoad(new LoadReport(StoreLayout.NameOf(checkpointKey), Rank, Epoch, seconds, bytes)), Deadline, cancellationToken);

    /// <summary>The checkpoint the run's tag names (what a resume loads), or null before the first commit; tried again through failovers until the commit timeout.</summary>
    public async Task<string?> GetLastAsync(CancellationToken cancellationToken) => (await Retried(() => Grain.GetLastCheckpoint(), cancellationToken).ConfigureAwait(false))?.Name;

    /// <summary>Moves the run's tag to committed checkpoint <paramref name="name"/>; the grain refuses a name its catalog does not hold with <see cref="RunRefusedException"/>.</summary>
    public Task TagLastAsync(string name, CancellationToken cancellationToken) => Transient.RetryAsync(() => Grain.TagLastCheckpoint(name), Deadline, cancellationToken);

    /// <summary>The names of the run's committed checkpoints, oldest first, from the grain's catalog; tried again through failovers until the commit timeout.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) =>
        (await Retried(() => Grain.ListCheckpoints(), cancellationToken).ConfigureAwait(false)).Select(c => c.Name).ToList();

    /// <summary>A call to the run grain, tried again while a silo fails over or the cluster is briefly unreachable, until the commit timeout.</summary>
    private Task<T> Retried<T>(Func<Task<T>> call, CancellationToken cancellationToken) => Transient.RetryAsync(call, Deadline, cancellationToken);

    private DateTimeOffset Deadline => DateTimeOffset.UtcNow + Committer.CommitTimeout;

    /// <summary>The run grain applies max_to_keep after each commit; agents never delete.</summary>
    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => Task.FromResult(false);

    /// <summary>"ckpt://tenant/run/NAME": the committed checkpoint's folder in the store, whatever world size wrote it.</summary>
    public async Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken)
    {
        if (!path.StartsWith(Scheme, StringComparison.Ordinal)) return null;
        var parts = path[Scheme.Length..].Split('/');
        if (parts.Length != 3) throw new ArgumentException($"'{path}' is not {Scheme}tenant/run/NAME.", nameof(path));
        var runId = new RunId(parts[0], parts[1]);
        var catalog = await Retried(() => grains.GetGrain<ITrainingRunGrain>(runId.Key).ListCheckpoints(), cancellationToken).ConfigureAwait(false);
        var record = catalog.FirstOrDefault(c => c.Name == parts[2]) ?? throw new CheckpointNotFoundException(path, $"run {runId}");
        return (Store, StoreLayout.CheckpointKeyOf(record.ManifestKey));
    }
}
