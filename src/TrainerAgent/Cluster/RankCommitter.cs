using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.Formats;

namespace Checkpointing.TrainerAgent.Cluster;

/// <summary>
/// One rank's side of a cluster save (DESIGN.md §6, §13): begin with the run grain, stream this
/// rank's share of the tensors into the store, report the shard, and wait until every rank is in
/// and the grain committed. Used by <see cref="ClusterBackend"/> and by <c>ckpt bench commits</c>.
/// </summary>
public sealed class RankCommitter(IGrainFactory grains, RunId run, ICheckpointStore store, int rank, int worldSize, long epoch)
{
    public RunId Run { get; } = run;
    public int Rank { get; } = rank;
    public int WorldSize { get; } = worldSize;
    public long Epoch { get; } = epoch;
    public ICheckpointStore Store { get; } = store;
    public ITrainingRunGrain Grain => grains.GetGrain<ITrainingRunGrain>(Run.Key);

    /// <summary>How long a rank that reported waits for the other ranks before the save fails.</summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>Saves <paramref name="name"/> collectively: every rank of the world calls this with the same tensor keys and sizes. Returns the committed record.</summary>
    /// <param name="stateJson">The non-tensor state tree; rank 0 must send it, other ranks may pass null.</param>
    public async Task<CheckpointRecord> SaveAsync(string name, long? iteration, IReadOnlyList<NamedTensor> tensors, string? stateJson,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        var plan = await Grain.BeginCheckpoint(new BeginCheckpointRequest(name, iteration, WorldSize, Rank, Epoch,
            tensors.Select(t => new TensorSize(t.Key, t.ByteLength)).ToList())).ConfigureAwait(false);
        var report = await RankShardWriter.WriteAsync(Store, plan, Epoch, tensors, Rank == 0 ? stateJson : null, progress, cancellationToken).ConfigureAwait(false);
        var ack = await Grain.ReportShard(report).ConfigureAwait(false);
        return ack.Record ?? await WaitForCommitAsync(plan, cancellationToken).ConfigureAwait(false);
    }

    private async Task<CheckpointRecord> WaitForCommitAsync(SavePlan plan, CancellationToken cancellationToken)
    {
        var deadline = DateTimeOffset.UtcNow + CommitTimeout;
        while (true)
        {
            var view = await Grain.Get().ConfigureAwait(false);
            if (view.Catalog.FirstOrDefault(c => c.Name == plan.Name && c.AttemptId == plan.AttemptId) is { } record) return record;
            if (view.Pending.All(p => p.Name != plan.Name))
                throw new RunRefusedException($"Checkpoint {plan.Name} of {Run} was abandoned before every rank reported (see the run grain's log).");
            if (DateTimeOffset.UtcNow > deadline)
                throw new TimeoutException($"Checkpoint {plan.Name} of {Run}: ranks {string.Join(", ", view.Pending.First(p => p.Name == plan.Name).RanksReported)} of {WorldSize} reported within {CommitTimeout}.");
            await Task.Delay(TimeSpan.FromMilliseconds(100), cancellationToken).ConfigureAwait(false);
        }
    }
}
