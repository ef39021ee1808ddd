using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Orleans.Runtime.Messaging;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// One rank's side of a cluster save (docs/cluster.md#the-commit-protocol, docs/cluster.md#control-plane-at-fleet-scale): begin with the run grain (sending only a
/// summary of the tensor list), compute this rank's share, stream it into the store, report the
/// shard, and long-poll until every rank is in and the grain committed. The grain keeps reports in
/// memory: when it moved (silo failure) this rank is asked to, or finds it must, report again.
/// Used by <see cref="ClusterBackend"/> and by <c>ckpt-bench commits</c>.
/// </summary>
public sealed class RankCommitter(IGrainFactory grains, RunId run, ICheckpointStore store, int rank, int worldSize, long epoch)
{
    /// <summary>The run this rank saves into.</summary>
    public RunId Run { get; } = run;
    /// <summary>This rank, 0 to <see cref="WorldSize"/> - 1; rank 0 sends the non-tensor state.</summary>
    public int Rank { get; } = rank;
    /// <summary>How many ranks take part in every save; the grain commits once all of them reported.</summary>
    public int WorldSize { get; } = worldSize;
    /// <summary>The job attempt every call carries; once a newer one starts, the grain refuses them (<see cref="StaleAttemptException"/>).</summary>
    public long Epoch { get; } = epoch;
    /// <summary>The store this rank writes its shard into (the data plane); the grain never sees tensor bytes.</summary>
    public ICheckpointStore Store { get; } = store;
    /// <summary>The run's grain (key <c>tenant/run</c>), the control plane.</summary>
    public ITrainingRunGrain Grain => grains.GetGrain<ITrainingRunGrain>(Run.Key);

    /// <summary>How long a rank that reported waits for the other ranks before the save fails.</summary>
    public TimeSpan CommitTimeout { get; init; } = TimeSpan.FromMinutes(10);

    /// <summary>How long one AwaitCommit call may be held by the grain (keep it below the client's response timeout).</summary>
    public TimeSpan PollWait { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// Incremental saves (docs/format.md#incremental-checkpoints): each rank reads the run's last committed manifest from the store and
    /// references the tensors of its share that did not change since instead of writing them; the run grain
    /// holds the reused shards until no retained checkpoint references them.
    /// </summary>
    public bool Incremental { get; set; }

    /// <summary>Compresses the tensors of this rank's shard that get smaller (docs/compression.md); null, the default: stored as they are.</summary>
    public TensorCompression? Compression { get; set; }

    /// <summary>
    /// With <see cref="Incremental"/>: large tensors of this rank's share write only the blocks that changed since the run's last
    /// committed checkpoint (docs/compression.md#block-reuse); null, the default: tensors are reused or written whole.
    /// </summary>
    public BlockReuse? BlockReuse { get; set; }

    /// <summary>
    /// How long this rank waits out a storage outage while it writes its shard (Storage:OutageBudget): it tries again with
    /// backoff, keeping its pending checkpoint alive at the grain, then fails with <see cref="StorageOutageException"/>.
    /// </summary>
    public TimeSpan OutageBudget { get; set; } = DefaultOutageBudget;

    /// <summary>The default <see cref="OutageBudget"/>: 2 minutes.</summary>
    public static readonly TimeSpan DefaultOutageBudget = TimeSpan.FromMinutes(2);

    /// <summary>How often a rank waiting out an outage tells the grain its checkpoint is still in progress: well within the run's pending timeout.</summary>
    public TimeSpan KeepAliveEvery { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Saves <paramref name="name"/> collectively: every rank of the world calls this with the same whole tensors (keys and
    /// sizes) and its own chunks of sharded ones (<see cref="NamedTensor.Chunk"/>). Returns the committed record.
    /// </summary>
    /// <param name="name">The checkpoint's name, the same on every rank; saving a committed name again replaces that checkpoint.</param>
    /// <param name="iteration">The training iteration it was taken at (orders the catalog; the tag never moves back to an earlier iteration), or null.</param>
    /// <param name="tensors">Every whole tensor of the state (the same keys and sizes on every rank; this rank writes its share)
    /// and this rank's chunks of sharded tensors (all written).</param>
    /// <param name="stateJson">The non-tensor state tree; rank 0 must send it, other ranks may pass null.</param>
    /// <param name="progress">Gets the byte count of each tensor this rank writes as it completes (increments, not a running total;
    /// reused tensors are not counted); null for none.</param>
    /// <param name="cancellationToken">Cancels this rank's part; a checkpoint left pending expires at the grain (docs/cluster.md#expiry-of-abandoned-checkpoints).</param>
    /// <param name="stallSeconds">How long training waited before this write began (an async save's snapshot), reported for the run's history.</param>
    /// <exception cref="TimeoutException">Not every rank reported within <see cref="CommitTimeout"/>.</exception>
    /// <exception cref="StorageOutageException">The store stayed unavailable past <see cref="OutageBudget"/>.</exception>
    /// <exception cref="RunRefusedException">The grain refused the save, e.g. <see cref="StaleAttemptException"/> or <see cref="TenantLimitException"/>.</exception>
    public async Task<CheckpointRecord> SaveAsync(string name, long? iteration, IReadOnlyList<NamedTensor> tensors, string? stateJson,
        IProgress<long>? progress, CancellationToken cancellationToken, double? stallSeconds = null)
    {
        if (BlockReuse is not null && !Incremental) throw new InvalidOperationException("RankCommitter.BlockReuse is part of incremental saves: set Incremental too.");
        BlockReuse?.Validate();
        var deadline = DateTimeOffset.UtcNow + CommitTimeout;
        // The plan splits the whole (replicated) tensors; each rank writes its own chunks of sharded ones besides.
        var sizes = tensors.Where(t => t.Chunk is null).Select(t => new TensorSize(t.Key, t.ByteLength)).ToList();
        var request = new BeginCheckpointRequest(name, iteration, WorldSize, Rank, Epoch, TensorListSummary.Of(sizes));
        var attempt = await Traced(CheckpointTracing.Begin, name, () => Transient.RetryAsync(() => Grain.BeginCheckpoint(request), deadline, cancellationToken)).ConfigureAwait(false);
        var plan = SavePlan.For(attempt, sizes);
        // A storage outage is waited out here, where this rank alone holds up the checkpoint; a retried Begin keeps it pending.
        Task KeepAlive() => Grain.BeginCheckpoint(request);
        IReadOnlyList<EarlierCheckpoint>? reuseFrom = Incremental
            ? [.. await StorageOutage.RideAsync(() => LastCommittedAsync(deadline, cancellationToken), OutageBudget, KeepAlive, KeepAliveEvery, cancellationToken).ConfigureAwait(false)]
            : null;
        var report = await Traced(CheckpointTracing.WriteShard, name, () => StorageOutage.RideAsync(
            () => RankShardWriter.WriteAsync(Store, plan, Epoch, tensors, Rank == 0 ? stateJson : null, progress, cancellationToken, reuseFrom, Compression, BlockReuse),
            OutageBudget, KeepAlive, KeepAliveEvery, cancellationToken)).ConfigureAwait(false);
        report = report with { StallSeconds = stallSeconds };
        return await Traced(CheckpointTracing.Report, name, () => ReportUntilCommittedAsync(report, deadline, cancellationToken)).ConfigureAwait(false);
    }

    /// <summary>Steps 3 and 4: reports <paramref name="report"/> and waits for the commit, reporting again to a moved grain.</summary>
    private async Task<CheckpointRecord> ReportUntilCommittedAsync(ShardReport report, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var name = report.Name;

        var wait = new CommitWaitRequest(name, report.AttemptId, Rank, Epoch, PollWait);
        var reportNext = true;
        while (true)
        {
            if (DateTimeOffset.UtcNow > deadline)
                throw new TimeoutException($"Checkpoint {name} of {Run}: not every one of the {WorldSize} ranks reported within {CommitTimeout}.");
            if (reportNext)
            {
                var ack = await Transient.RetryAsync(() => ReportAsync(report), deadline, cancellationToken).ConfigureAwait(false);
                if (ack?.Record is { } committed) return committed;
                if (ack is null) continue; // the grain moved while this rank waited: report to the new activation
            }
            var answer = await Transient.RetryAsync(() => AwaitCommitAsync(wait), deadline, cancellationToken).ConfigureAwait(false);
            if (answer?.Record is { } record) return record;
            // null: the grain lost this rank's report (it moved); ReportAgain: it says so itself.
            reportNext = answer is null || answer.Status == CommitWaitStatus.ReportAgain;
        }
    }

    /// <summary>Runs <paramref name="step"/> in a span named <paramref name="span"/>, tagged with the run, this rank and the checkpoint.</summary>
    private Task<T> Traced<T>(string span, string name, Func<Task<T>> step) => CheckpointTracing.InSpanAsync(span, name, activity =>
    {
        activity?.SetTag(CheckpointTracing.RunTag, Run.Key);
        activity?.SetTag(CheckpointTracing.RankTag, Rank);
        return step();
    });

    /// <summary>The run's last committed checkpoint with its manifest; none when there is none or it cannot be read (then nothing is reused).</summary>
    private async Task<EarlierCheckpoint[]> LastCommittedAsync(DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var last = await Transient.RetryAsync(() => Grain.GetLastCheckpoint(), deadline, cancellationToken).ConfigureAwait(false);
        if (last is null) return [];
        try
        {
            var folder = StoreLayout.CheckpointKeyOf(last.ManifestKey);
            return [new EarlierCheckpoint(last.Name, await NativeCheckpointReader.ReadManifestAsync(Store, folder, cancellationToken).ConfigureAwait(false))];
        }
        catch (Exception e) when (e is CheckpointNotFoundException or CheckpointFormatException)
        {
            return [];
        }
    }

    /// <summary>Reports and waits for the commit in the same call; null when the grain moved while this rank waited.</summary>
    private async Task<ShardAck?> ReportAsync(ShardReport report)
    {
        try
        {
            return await Grain.ReportShard(report, PollWait).ConfigureAwait(false);
        }
        catch (RunMovedException)
        {
            return null;
        }
    }

    /// <summary>Null when the grain moved while this rank waited: its report is gone with the old activation.</summary>
    private async Task<CommitWait?> AwaitCommitAsync(CommitWaitRequest wait)
    {
        try
        {
            return await Grain.AwaitCommit(wait).ConfigureAwait(false);
        }
        catch (RunMovedException)
        {
            return null;
        }
    }
}

/// <summary>
/// Retries calls that failed because a silo went away or the grain reloaded its state (it is
/// reactivated, possibly elsewhere) until a deadline; refusals and every other error go to the caller at once.
/// </summary>
internal static class Transient
{
    public static async Task<T> RetryAsync<T>(Func<Task<T>> call, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(100);
        while (true)
        {
            cancellationToken.ThrowIfCancellationRequested();
            try
            {
                return await call().ConfigureAwait(false);
            }
            catch (Exception e) when (IsTransient(e) && DateTimeOffset.UtcNow < deadline)
            {
                await Task.Delay(delay, cancellationToken).ConfigureAwait(false);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, TimeSpan.FromSeconds(2).Ticks));
            }
        }
    }

    public static Task RetryAsync(Func<Task> call, DateTimeOffset deadline, CancellationToken cancellationToken) => RetryAsync(async () =>
    {
        await call().ConfigureAwait(false);
        return true;
    }, deadline, cancellationToken);

    /// <summary>A failure that a later call may not meet: the grain moved or reloaded, a silo or connection went away, no answer in time.</summary>
    public static bool IsTransient(Exception e) => e is RunMovedException or SiloUnavailableException or OrleansMessageRejectionException or ConnectionFailedException
        or TimeoutException or OrleansException { InnerException: null or SiloUnavailableException or OrleansMessageRejectionException or TimeoutException };
}
