using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;

namespace Checkpointing.Grains;

/// <summary>
/// Signed access to one run's objects for its ranks, when the checkpoint store can sign it (<see cref="IGrantingStore"/>):
/// a write grant opens exactly the shard a pending attempt planned for the rank, a read grant exactly one object of a
/// committed checkpoint. A rank then needs no storage credential, and what it holds opens nothing of another run or tenant.
/// </summary>
internal sealed class StoreGrants(RunId run, IPersistentState<RunState> state, RunCatalog catalog, ICheckpointStore store,
    Func<PendingCheckpoint, int, CheckpointAttempt> attemptFor, RunGrainOptions options, TimeProvider time, IRunShell shell)
{
    /// <summary>How long read access lasts; a rank that needs longer asks again.</summary>
    public static readonly TimeSpan ReadLifetime = TimeSpan.FromHours(1);

    public async Task<StoreGrant?> WriteAsync(string name, string attemptId, int rank, long epoch)
    {
        shell.EnsureCreated();
        shell.CheckEpoch(epoch);
        if (store is not IGrantingStore granting) return null;
        if (!state.State.Pending.TryGetValue(name, out var pending) || pending.AttemptId != attemptId)
            throw new RunRefusedException($"No pending checkpoint {name} attempt {attemptId} in run {run}: it expired, was committed or aborted, or was never begun.");
        if (rank < 0 || rank >= pending.WorldSize) throw new RunRefusedException($"Rank {rank} is not one of the {pending.WorldSize} ranks of checkpoint {name} of run {run}.");
        var attempt = attemptFor(pending, rank);
        var key = StoreLayout.FileKey(attempt.CheckpointPrefix, attempt.ShardPath);
        var expiresOn = time.GetUtcNow() + options.PendingTimeout;
        return new StoreGrant(key, await granting.GrantWriteAsync(key, expiresOn), expiresOn);
    }

    public async Task<IReadOnlyList<StoreGrant>> ReadAsync(string name)
    {
        shell.EnsureCreated();
        if (store is not IGrantingStore granting) return [];
        var record = catalog.Find(CheckpointName.Validate(name)) ?? throw new RunRefusedException($"Run {run} has no committed checkpoint {name}.");
        var folder = StoreLayout.CheckpointKey(run.StorePrefix, record.Name);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, folder);
        var expiresOn = time.GetUtcNow() + ReadLifetime;
        var keys = manifest.Shards.Select(shard => StoreLayout.ShardKey(folder, shard)).Prepend(StoreLayout.ManifestKey(folder)).Distinct();
        var grants = new List<StoreGrant>();
        foreach (var key in keys) grants.Add(new StoreGrant(key, await granting.GrantReadAsync(key, expiresOn), expiresOn));
        return grants;
    }
}
