using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// The memory tier under a second <see cref="Checkpointer"/> of a rank (docs/memory-tier.md). A save writes the rank's
/// whole state, already copied to host memory by the checkpointer's snapshot arena, in the native format into memory, puts
/// it on the rank's own holder and its replicas' (the run grain's placement), reports it to the run grain, and once every
/// rank's snapshot is held frees the rank's previous one. A memory checkpoint that cannot be completed is logged and
/// dropped, never thrown at training: the durable tier stays the safety net. A resume fetches the rank's snapshot into this
/// process's memory, checked, and the checkpointer loads it from there (<see cref="ResolveAsync"/>).
/// </summary>
public sealed class MemoryTierBackend(ITrainingRunGrain grain, RunId run, int rank, int worldSize, long epoch, MemoryTierOptions options, HolderClient holders,
    TimeSpan commitTimeout, ILogger logger) : ICheckpointBackend
{
    /// <summary>The prefix of the paths this backend hands out: <c>mem://tenant/run/NAME</c>.</summary>
    public const string Scheme = "mem://";
    /// <summary>Tensors per shard of a snapshot are bounded so that each shard fits one array of this process and of the holder's reader.</summary>
    private const long ShardBytes = 512L << 20;
    private readonly MemoryStore _fetched = new();
    private string? _fetchedName;
    /// <summary>This rank's snapshot of the newest memory checkpoint it saw committed: freed once a newer one commits.</summary>
    private (SnapshotKey Key, IReadOnlyList<HolderRef> Holders)? _previous;

    /// <summary>Memory checkpoints this rank saw committed, and those it could not complete (a holder or the run grain failed, or another rank did not report in time).</summary>
    public int Commits { get; private set; }
    /// <inheritdoc cref="Commits"/>
    public int Drops { get; private set; }

    /// <summary>Raised with the name of each memory checkpoint once committed (every rank's snapshot held).</summary>
    public event Action<string>? Committed;

    /// <summary>Bytes this rank's last snapshot held, each copy.</summary>
    public long LastSnapshotBytes { get; private set; }

    /// <summary>The host this rank's own holder runs on.</summary>
    public string Host => options.Holder.Host;

    /// <summary><c>mem://tenant/run/NAME</c>.</summary>
    public string PathOf(string name) => $"{Scheme}{run.Key}/{name}";

    /// <summary>Tells the run grain where this rank's holder is, so that placements are known by the first memory checkpoint.</summary>
    public Task AnnounceAsync(CancellationToken cancellationToken) =>
        Transient.RetryAsync(() => grain.PlaceMemorySnapshots(new HolderAnnouncement(epoch, rank, worldSize, options.Holder)), Deadline, cancellationToken);

    /// <summary>
    /// Takes memory checkpoint <paramref name="name"/> from the snapshot in <paramref name="data"/>; drops it (logged, counted in
    /// <see cref="Drops"/>) when it cannot complete. Everything, from waiting for the other ranks' holders to the commit, fits in
    /// <see cref="MemoryTierOptions.CommitWait"/>.
    /// </summary>
    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null)
    {
        if (iteration is not { } at) throw new ArgumentException("A memory checkpoint needs the iteration it holds.", nameof(data));
        var deadline = DateTimeOffset.UtcNow + CommitWait; // the parameter named options hides the tier's
        var reporting = false;
        try
        {
            var (key, placement) = await PutAsync(name, at, data, options, deadline, cancellationToken).ConfigureAwait(false);
            reporting = true;
            await CommitAsync(new MemorySnapshotReport(epoch, rank, worldSize, name, at, placement.Holders, LastSnapshotBytes), key, deadline, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            Drops++;
            logger.LogWarning("Memory checkpoint {Name} of rank {Rank} dropped: {Reason}", name, rank, e.Message);
            // The set can never complete without this rank: say so, so that the ranks waiting for it stop now.
            if (!reporting) await AbandonQuietlyAsync(name, at).ConfigureAwait(false);
        }
    }

    /// <summary>Waits for the world's placement, serializes the snapshot in memory and puts it on the rank's holders.</summary>
    private async Task<(SnapshotKey Key, MemoryPlacement Placement)> PutAsync(string name, long iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions writeOptions,
        DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var announcement = new HolderAnnouncement(epoch, rank, worldSize, options.Holder);
        var placement = await AskUntilAsync(wait => grain.PlaceMemorySnapshots(announcement, wait), placed => placed is not null, deadline, cancellationToken).ConfigureAwait(false);
        if (placement is null) throw new TimeoutException($"not every rank announced its holder within {options.CommitWait}");
        var staging = new MemoryStore();
        var folder = $"snapshot/{rank}/{iteration}";
        var shards = (int)Math.Clamp(AgentMetrics.TensorBytes(data) / ShardBytes + 1, 1, Environment.ProcessorCount * 4);
        await NativeCheckpointWriter.WriteAsync(staging, folder, new CheckpointIdentity(run.Key, name, iteration), data, TorchTensors.AsSource,
            writeOptions with { ShardCount = shards, ReuseFrom = null, Progress = null }, cancellationToken).ConfigureAwait(false);
        var objects = new List<(string Name, ReadOnlyMemory<byte> Bytes)>();
        await foreach (var entry in staging.ListAsync(folder + "/", cancellationToken).ConfigureAwait(false)) objects.Add((entry.Key[(folder.Length + 1)..], staging.Bytes(entry.Key)));
        var key = new SnapshotKey(run, rank, epoch, iteration);
        try
        {
            // The committed snapshot this rank knows of is kept by every holder whatever else it drops (see SnapshotHolder).
            await holders.PutAsync(placement.Holders, key, objects, _previous?.Key, cancellationToken).ConfigureAwait(false);
        }
        catch (HolderException)
        {
            await FreeAsync(key, placement.Holders).ConfigureAwait(false); // never reported, so it can never commit: free every copy
            throw;
        }
        LastSnapshotBytes = objects.Sum(o => (long)o.Bytes.Length);
        return (key, placement);
    }

    /// <remarks>
    /// Waits for the other ranks' reports, so that a rank never has more than this one snapshot beyond the committed one on a
    /// holder. One that does not commit in time is abandoned through the grain first (it then never commits) and freed.
    /// The checkpointer's next memory checkpoint waits for this, so training runs at most that far ahead.
    /// </remarks>
    private async Task CommitAsync(MemorySnapshotReport report, SnapshotKey key, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        var ack = await AskUntilAsync(wait => grain.ReportMemorySnapshot(report, wait), answer => answer.Committed || answer.RanksMissing == 0, deadline, cancellationToken)
            .ConfigureAwait(false);
        var committed = ack.Committed || (ack.RanksMissing > 0 && await AbandonAsync(report.Iteration, cancellationToken).ConfigureAwait(false));
        if (!committed)
        {
            await FreeAsync(key, report.Holders).ConfigureAwait(false);
            throw new TimeoutException(ack.RanksMissing > 0
                ? $"{ack.RanksMissing} ranks did not report within {options.CommitWait}; abandoned and freed"
                : "it will not commit (a newer one committed first, or a rank abandoned it); freed");
        }
        Commits++;
        Committed?.Invoke(report.Name);
        if (_previous is var (previousKey, previousHolders)) await FreeAsync(previousKey, previousHolders).ConfigureAwait(false);
        _previous = (key, report.Holders);
    }

    /// <summary>
    /// Asks the grain, which holds each call up to the time left, again and again until an answer is <paramref name="final"/>
    /// or <paramref name="deadline"/> has passed; returns the last answer.
    /// </summary>
    private async Task<T> AskUntilAsync<T>(Func<TimeSpan, Task<T>> ask, Func<T, bool> final, DateTimeOffset deadline, CancellationToken cancellationToken)
    {
        T answer;
        do
        {
            var wait = deadline - DateTimeOffset.UtcNow;
            answer = await Transient.RetryAsync(() => ask(wait > TimeSpan.Zero ? wait : TimeSpan.Zero), Deadline, cancellationToken).ConfigureAwait(false);
        }
        while (!final(answer) && DateTimeOffset.UtcNow < deadline);
        return answer;
    }

    /// <summary>Tells the grain this rank gives up on <paramref name="iteration"/>; true when it committed after all.</summary>
    private Task<bool> AbandonAsync(long iteration, CancellationToken cancellationToken) =>
        Transient.RetryAsync(() => grain.AbandonMemorySnapshot(epoch, rank, iteration), Deadline, cancellationToken);

    /// <summary>Abandons an iteration this rank never reported; a grain that cannot be told lets the others' waits run out instead.</summary>
    private async Task AbandonQuietlyAsync(string name, long iteration)
    {
        try { await AbandonAsync(iteration, CancellationToken.None).ConfigureAwait(false); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            logger.LogInformation("Could not abandon memory checkpoint {Name} of rank {Rank}: {Reason}", name, rank, e.Message);
        }
    }

    /// <summary>Frees a snapshot on its holders; a holder that cannot be told drops it by its own bound.</summary>
    private async Task FreeAsync(SnapshotKey key, IReadOnlyList<HolderRef> on)
    {
        foreach (var holder in on)
        {
            try { await holders.DeleteAsync(holder, key, CancellationToken.None).ConfigureAwait(false); }
            catch (HolderException e) { logger.LogInformation("Could not free snapshot {Key}: {Reason}", key.Path, e.Message); }
        }
    }

    /// <summary>
    /// Fetches this rank's snapshot of <paramref name="source"/> from the first of its holders that has it whole, checked, into
    /// this process's memory; null when it did, else why no holder could give it.
    /// </summary>
    public async Task<string?> FetchAsync(MemoryResumeSource source, CancellationToken cancellationToken)
    {
        var key = new SnapshotKey(run, rank, source.Epoch, source.Iteration);
        var problems = new List<string>();
        foreach (var holder in source.Sources)
        {
            try
            {
                var bytes = await holders.FetchAsync(holder, key, _fetched, FetchedFolder(source.Name), cancellationToken).ConfigureAwait(false);
                _fetchedName = source.Name;
                // Once this attempt commits a newer one, the snapshot resumed from is freed on its holders like any superseded one.
                _previous = (key, source.Sources);
                logger.LogInformation("Rank {Rank} fetched {Name} ({Bytes} bytes) from holder {Holder}", rank, source.Name, bytes, holder.Endpoint);
                return null;
            }
            catch (HolderException e)
            {
                problems.Add(e.Message);
                await CheckpointFiles.DeleteCheckpointAsync(_fetched, FetchedFolder(source.Name)).ConfigureAwait(false); // what a broken fetch left
            }
        }
        return problems.Count == 0 ? "no holder was recorded for it" : string.Join("; ", problems);
    }

    /// <summary>Frees a fetched snapshot once loaded, or when the attempt resumes from the durable tier instead.</summary>
    public async Task ForgetFetchedAsync()
    {
        if (_fetchedName is not { } name) return;
        await CheckpointFiles.DeleteCheckpointAsync(_fetched, FetchedFolder(name)).ConfigureAwait(false);
        _fetchedName = null;
    }

    private static string FetchedFolder(string name) => $"fetched/{name}";

    /// <summary><c>mem://tenant/run/NAME</c> of the snapshot this rank fetched: where in this process's memory it lies.</summary>
    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken)
    {
        if (!path.StartsWith(Scheme, StringComparison.Ordinal)) return Task.FromResult<(ICheckpointStore Store, string Key)?>(null);
        if (_fetchedName is not { } name || path != PathOf(name)) throw new CheckpointNotFoundException(path, $"rank {rank}'s fetched memory snapshot");
        return Task.FromResult<(ICheckpointStore Store, string Key)?>((_fetched, FetchedFolder(name)));
    }

    /// <summary>Records the resume in the run's history as a load of the memory checkpoint.</summary>
    public Task RecordLoadAsync(string checkpointKey, double seconds, long bytes, CancellationToken cancellationToken) =>
        Transient.RetryAsync(() => grain.RecordLoad(new LoadReport(StoreLayout.NameOf(checkpointKey), rank, epoch, seconds, bytes)), Deadline, cancellationToken);

    /// <summary>Null: a resume goes through <see cref="RunAgent.ResumeAsync"/>, which asks the run grain.</summary>
    public Task<string?> GetLastAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);

    /// <summary>Nothing to tag: the run grain records the newest memory checkpoint when it commits.</summary>
    public Task TagLastAsync(string name, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Empty: memory checkpoints are not in the durable catalog.</summary>
    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>False: a snapshot is always whole (holders keep no earlier ones to reuse from).</summary>
    public bool Incremental => false;

    /// <summary>True: holders keep the newest snapshots and this backend frees superseded ones; the periodic checkpointer never deletes.</summary>
    public bool AppliesRetention => true;

    /// <summary>Never deletes: superseded snapshots are freed on their holders after the next commit.</summary>
    public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => Task.FromResult(false);

    private DateTimeOffset Deadline => DateTimeOffset.UtcNow + commitTimeout;

    private TimeSpan CommitWait => options.CommitWait;
}
