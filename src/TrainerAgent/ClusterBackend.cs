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
    public const string Scheme = "ckpt://";

    /// <summary>This rank's side of the save protocol.</summary>
    public RankCommitter Committer { get; } = new(grains, run, store, rank, worldSize, epoch);

    public RunId Run => Committer.Run;
    public int Rank => Committer.Rank;
    public int WorldSize => Committer.WorldSize;
    public long Epoch => Committer.Epoch;
    public ICheckpointStore Store => Committer.Store;
    public ITrainingRunGrain Grain => Committer.Grain;

    public bool AppliesRetention => true;

    /// <summary>Each rank reuses the bytes of unchanged tensors from the run's last committed checkpoint (see <see cref="RankCommitter.Incremental"/>).</summary>
    public bool Incremental
    {
        get => Committer.Incremental;
        init => Committer.Incremental = value;
    }

    public string PathOf(string name) => $"{Scheme}{Run.Key}/{name}";

    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null)
    {
        var (state, flattened) = StateTree.Flatten(data, TorchTensors.AsSource);
        var tensors = ShardedTensors.Apply(flattened, options.Layouts);
        await Committer.SaveAsync(name, iteration, tensors, Rank == 0 ? state.ToJsonString() : null, options.Progress, cancellationToken, stallSeconds).ConfigureAwait(false);
    }

    public Task RecordLoadAsync(string checkpointKey, double seconds, long bytes, CancellationToken cancellationToken) =>
        Transient.RetryAsync(() => Grain.RecordLoad(new LoadReport(StoreLayout.NameOf(checkpointKey), Rank, Epoch, seconds, bytes)), Deadline, cancellationToken);

    public async Task<string?> GetLastAsync(CancellationToken cancellationToken) => (await Retried(() => Grain.GetLastCheckpoint(), cancellationToken).ConfigureAwait(false))?.Name;

    public Task TagLastAsync(string name, CancellationToken cancellationToken) => Transient.RetryAsync(() => Grain.TagLastCheckpoint(name), Deadline, cancellationToken);

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
