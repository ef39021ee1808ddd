using Orleans.Runtime;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

/// <summary>
/// The single writer of one run's catalog (DESIGN.md §6). Orleans runs one call at a time per
/// grain, so every check-then-act below is atomic with respect to other callers. Every change is
/// persisted before it is acknowledged; deletions of blobs happen after the state that stops
/// referencing them is durable, and are remembered until done.
/// </summary>
public sealed class TrainingRunGrain(
    [PersistentState("run", GrainStorage.Runs)] IPersistentState<RunState> state,
    ICheckpointStoreProvider stores,
    IOptions<RunGrainOptions> options,
    TimeProvider time,
    ILogger<TrainingRunGrain> logger) : Grain, ITrainingRunGrain
{
    private RunId _id = null!;
    private RunState S => state.State;
    private ICheckpointStore Store => stores.Store;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _id = RunId.Parse(this.GetPrimaryKeyString());
        this.RegisterGrainTimer(SweepAsync, new GrainTimerCreationOptions(options.Value.SweepPeriod, options.Value.SweepPeriod) { Interleave = false, KeepAlive = false });
        return Task.CompletedTask;
    }

    public async Task<RunView> Create(PeriodicPolicy policy)
    {
        policy.Validated();
        if (S.Created)
        {
            if (S.Policy == policy) return View();
            throw new RunRefusedException($"Run {_id} already exists with policy {S.Policy}; use SetPolicy to change it.");
        }
        await GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant).RegisterRun(_id.Run);
        S.Created = true;
        S.Policy = policy;
        S.CreatedUtc = time.GetUtcNow();
        await state.WriteStateAsync();
        logger.LogInformation("Run {Run} created with {Policy}", _id, policy);
        return View();
    }

    public Task<RunView> Get()
    {
        EnsureCreated();
        return Task.FromResult(View());
    }

    public async Task<RunView> SetPolicy(PeriodicPolicy policy)
    {
        EnsureCreated();
        S.Policy = policy.Validated();
        await state.WriteStateAsync();
        await ApplyRetentionAsync();
        return View();
    }

    public async Task<long> StartAttempt()
    {
        EnsureCreated();
        S.Epoch++;
        // Checkpoints begun by earlier attempts can never complete now: collect them.
        foreach (var stale in S.Pending.Values.Where(p => p.Epoch < S.Epoch).ToList()) Abort(stale, "superseded by a new attempt");
        await state.WriteStateAsync();
        await CleanUpForNewAttemptAsync();
        logger.LogInformation("Run {Run} attempt {Epoch} started", _id, S.Epoch);
        return S.Epoch;
    }

    public async Task<SavePlan> BeginCheckpoint(BeginCheckpointRequest request)
    {
        EnsureCreated();
        CheckEpoch(request.Epoch);
        CheckpointName.Validate(request.Name);
        if (request.WorldSize < 1 || request.Rank < 0 || request.Rank >= request.WorldSize)
            throw new RunRefusedException($"Rank {request.Rank} is not in a world of size {request.WorldSize}.");

        if (S.Pending.TryGetValue(request.Name, out var pending))
        {
            if (pending.Epoch == request.Epoch)
            {
                if (pending.WorldSize != request.WorldSize)
                    throw new RunRefusedException($"Checkpoint {request.Name} was begun with world size {pending.WorldSize}, not {request.WorldSize}.");
                return PlanFor(pending, request.Rank); // a retried or a further rank's Begin: same plan
            }
            Abort(pending, "begun again by a newer attempt");
        }

        var duplicate = request.Tensors.GroupBy(t => t.Key).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null) throw new RunRefusedException($"Tensor '{duplicate.Key}' is listed twice.");
        var split = ShardPlanner.Split(request.Tensors, request.WorldSize, t => t.Key, t => t.Bytes);
        pending = new PendingCheckpoint
        {
            Name = request.Name,
            AttemptId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)),
            Epoch = request.Epoch,
            WorldSize = request.WorldSize,
            Iteration = request.Iteration,
            StartedUtc = time.GetUtcNow(),
            LastProgressUtc = time.GetUtcNow(),
            KeysByRank = split.Select(g => g.Select(t => t.Key).ToList()).ToList(),
        };
        S.Pending[request.Name] = pending;
        await state.WriteStateAsync();
        await RunDeletionsAsync();
        // Stay active until the sweep could expire this checkpoint, so an abandoned one is collected even if nobody calls again.
        DelayDeactivation(options.Value.PendingTimeout + options.Value.SweepPeriod * 2);
        return PlanFor(pending, request.Rank);
    }

    public async Task<ShardAck> ReportShard(ShardReport report)
    {
        EnsureCreated();
        CheckEpoch(report.Epoch);
        var committed = S.Catalog.FirstOrDefault(c => c.Name == report.Name && c.AttemptId == report.AttemptId);
        if (committed is not null) return new ShardAck(true, [], committed); // a retry after the commit

        if (!S.Pending.TryGetValue(report.Name, out var pending) || pending.AttemptId != report.AttemptId)
            throw new RunRefusedException($"No pending checkpoint {report.Name} attempt {report.AttemptId} in run {_id}: it expired, was aborted, or was never begun.");
        if (report.Rank < 0 || report.Rank >= pending.WorldSize)
            throw new RunRefusedException($"Rank {report.Rank} is not in a world of size {pending.WorldSize}.");
        CheckReport(pending, report);

        if (pending.Reports.TryGetValue(report.Rank, out var earlier))
        {
            if (earlier.Shard != report.Shard)
                throw new RunRefusedException($"Rank {report.Rank} already reported {earlier.Shard.Path} ({earlier.Shard.Checksum}) for {report.Name}; a different report is refused.");
        }
        else
        {
            pending.Reports[report.Rank] = report;
            pending.LastProgressUtc = time.GetUtcNow();
            await state.WriteStateAsync();
        }

        var waiting = Enumerable.Range(0, pending.WorldSize).Where(r => !pending.Reports.ContainsKey(r)).ToList();
        if (waiting.Count > 0) return new ShardAck(false, waiting, null);
        var record = await CommitAsync(pending);
        return new ShardAck(true, [], record);
    }

    /// <summary>Checks a report against the plan: the shard is where the plan put it and holds exactly the planned tensors.</summary>
    private void CheckReport(PendingCheckpoint pending, ShardReport report)
    {
        var plan = PlanFor(pending, report.Rank);
        if (report.Shard.Path != plan.ShardPath)
            throw new RunRefusedException($"Rank {report.Rank} reported shard '{report.Shard.Path}', the plan says '{plan.ShardPath}'.");
        if (!report.Tensors.Keys.Order(StringComparer.Ordinal).SequenceEqual(plan.TensorKeys.Order(StringComparer.Ordinal)))
            throw new RunRefusedException($"Rank {report.Rank}'s shard holds {report.Tensors.Count} tensors, not the {plan.TensorKeys.Count} its plan assigned.");
        if (report.Tensors.Values.Any(t => t.Shard != report.Rank))
            throw new RunRefusedException($"Rank {report.Rank}'s tensor index must point at shard {report.Rank}.");
        if (report.Rank == 0 && report.StateJson is null)
            throw new RunRefusedException("Rank 0 must report the non-tensor state.");
    }

    private async Task<CheckpointRecord> CommitAsync(PendingCheckpoint pending)
    {
        var prefix = $"{_id.StorePrefix}/{pending.Name}";
        var reports = Enumerable.Range(0, pending.WorldSize).Select(r => pending.Reports[r]).ToList();
        var manifest = new CheckpointManifest
        {
            FormatVersion = CheckpointManifest.CurrentFormatVersion,
            Run = _id.Key,
            Name = pending.Name,
            Iteration = pending.Iteration,
            WorldSize = pending.WorldSize,
            CreatedUtc = time.GetUtcNow(),
            Shards = reports.Select(r => r.Shard).ToList(),
            Tensors = reports.SelectMany(r => r.Tensors).ToDictionary(StringComparer.Ordinal),
            State = JsonNode.Parse(reports[0].StateJson!) as JsonObject ?? throw new RunRefusedException("Rank 0's state is not a JSON object."),
        };
        var manifestBytes = ManifestJson.Serialize(manifest);
        ManifestJson.Parse(manifestBytes, $"{prefix}/{ManifestJson.FileName}"); // refuse what a reader would refuse

        var replaced = S.Catalog.FirstOrDefault(c => c.Name == pending.Name);
        var retainedAfter = S.Catalog.Sum(c => c.Bytes) - (replaced?.Bytes ?? 0) + manifest.TotalBytes;
        try
        {
            await GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant).CheckRetainedBytes(_id.Run, retainedAfter);
        }
        catch (TenantLimitException)
        {
            Abort(pending, "refused by the tenant's retained-bytes limit");
            await state.WriteStateAsync();
            await RunDeletionsAsync();
            throw;
        }

        await Store.WriteBytesAsync($"{prefix}/{ManifestJson.FileName}", manifestBytes);
        var record = new CheckpointRecord(pending.Name, pending.Iteration, manifest.TotalBytes, pending.WorldSize, manifest.CreatedUtc,
            $"{prefix}/{ManifestJson.FileName}", pending.AttemptId, pending.Epoch);
        S.Pending.Remove(pending.Name);
        if (replaced is not null)
        {
            S.Catalog.Remove(replaced);
            S.Deletions.Add(new PendingDeletion(prefix, replaced.AttemptId));
        }
        InsertByIteration(record);
        var tagged = S.Catalog.FirstOrDefault(c => c.Name == S.LastCheckpoint);
        if (tagged is null || (record.Iteration ?? long.MaxValue) >= (tagged.Iteration ?? long.MinValue)) S.LastCheckpoint = record.Name;
        if (S.CheckpointRequest is { } request && request.RequestedUtc <= pending.StartedUtc) S.CheckpointRequest = null;
        SelectEvictions();
        await state.WriteStateAsync();
        logger.LogInformation("Run {Run} committed {Name} ({Bytes} bytes, {World} ranks); last = {Last}", _id, record.Name, record.Bytes, record.WorldSize, S.LastCheckpoint);

        await RunDeletionsAsync();
        await ReportRetainedAsync();
        return record;
    }

    private void InsertByIteration(CheckpointRecord record)
    {
        var index = S.Catalog.FindLastIndex(c => (c.Iteration ?? long.MaxValue) <= (record.Iteration ?? long.MaxValue));
        S.Catalog.Insert(index + 1, record);
    }

    /// <summary>max_to_keep over periodic checkpoints ("{prefix}_NNNNNNN"), newest kept; never "_final", never the tagged one.</summary>
    private void SelectEvictions()
    {
        if (S.Policy.MaxToKeep is not { } keep) return;
        var periodic = new Regex($"^{Regex.Escape(S.Policy.FilePrefix)}_\\d{{7,}}$");
        var candidates = S.Catalog.Where(c => periodic.IsMatch(c.Name)).ToList();
        foreach (var evicted in candidates.Take(Math.Max(0, candidates.Count - keep)).Where(c => c.Name != S.LastCheckpoint))
        {
            S.Catalog.Remove(evicted);
            S.Deletions.Add(new PendingDeletion($"{_id.StorePrefix}/{evicted.Name}", null));
            logger.LogInformation("Run {Run} evicts {Name} (max_to_keep={Keep})", _id, evicted.Name, keep);
        }
    }

    private async Task ApplyRetentionAsync()
    {
        SelectEvictions();
        await state.WriteStateAsync();
        await RunDeletionsAsync();
        await ReportRetainedAsync();
    }

    public Task<CheckpointRecord?> GetLastCheckpoint()
    {
        EnsureCreated();
        return Task.FromResult(S.Catalog.FirstOrDefault(c => c.Name == S.LastCheckpoint));
    }

    public Task<IReadOnlyList<CheckpointRecord>> ListCheckpoints()
    {
        EnsureCreated();
        return Task.FromResult<IReadOnlyList<CheckpointRecord>>(S.Catalog.ToList());
    }

    public async Task TagLastCheckpoint(string name)
    {
        EnsureCreated();
        if (S.Catalog.All(c => c.Name != name)) throw new RunRefusedException($"Run {_id} has no committed checkpoint {name}.");
        S.LastCheckpoint = name;
        await state.WriteStateAsync();
    }

    public async Task RequestCheckpointNow(string reason)
    {
        EnsureCreated();
        S.CheckpointRequest = new CheckpointRequest(Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(4)), reason, time.GetUtcNow());
        await state.WriteStateAsync();
        logger.LogInformation("Run {Run}: checkpoint requested ({Reason})", _id, reason);
    }

    public async Task<StepDirective> GetDirective(long epoch, long iteration)
    {
        EnsureCreated();
        CheckEpoch(epoch);
        if (S.CheckpointRequest is { SaveAtIteration: null } request)
        {
            // Ranks of a data-parallel job are at most a step apart: two steps of margin let all of them see it in time.
            S.CheckpointRequest = request with { SaveAtIteration = iteration + 2 };
            await state.WriteStateAsync();
        }
        return new StepDirective(S.CheckpointRequest, S.Policy);
    }

    public async Task Delete()
    {
        EnsureCreated();
        var deleted = 0;
        foreach (var name in await CheckpointFoldersAsync()) deleted += await CheckpointFiles.DeleteCheckpointAsync(Store, $"{_id.StorePrefix}/{name}");
        await GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant).UnregisterRun(_id.Run);
        await state.ClearStateAsync();
        state.State = new RunState();
        logger.LogInformation("Run {Run} deleted ({Objects} objects)", _id, deleted);
        DeactivateOnIdle();
    }

    /// <summary>Collects checkpoints abandoned mid-save and finishes owed deletions.</summary>
    private async Task SweepAsync(CancellationToken cancellationToken)
    {
        if (!S.Created) return;
        var cutoff = time.GetUtcNow() - options.Value.PendingTimeout;
        var expired = S.Pending.Values.Where(p => p.LastProgressUtc < cutoff).ToList();
        foreach (var p in expired) Abort(p, $"no progress for {options.Value.PendingTimeout}");
        if (expired.Count > 0) await state.WriteStateAsync();
        await RunDeletionsAsync();
    }

    private void Abort(PendingCheckpoint pending, string why)
    {
        S.Pending.Remove(pending.Name);
        S.Deletions.Add(new PendingDeletion($"{_id.StorePrefix}/{pending.Name}", pending.AttemptId));
        logger.LogWarning("Run {Run}: checkpoint {Name} attempt {Attempt} abandoned: {Why}", _id, pending.Name, pending.AttemptId, why);
    }

    /// <summary>Deletes what <see cref="RunState.Deletions"/> owes, never touching the shards of a committed checkpoint.</summary>
    private async Task RunDeletionsAsync()
    {
        if (S.Deletions.Count == 0) return;
        foreach (var deletion in S.Deletions.ToList())
        {
            var name = deletion.CheckpointPrefix[(deletion.CheckpointPrefix.LastIndexOf('/') + 1)..];
            var live = S.Catalog.FirstOrDefault(c => c.Name == name);
            var livePending = S.Pending.GetValueOrDefault(name);
            await foreach (var entry in Store.ListAsync(deletion.CheckpointPrefix + "/"))
            {
                if (CheckpointFiles.FileIn(deletion.CheckpointPrefix, entry.Key) is not { } file || !CheckpointFiles.IsOurs(file)) continue;
                var fileAttempt = CheckpointFiles.AttemptOf(file);
                if (deletion.AttemptId is { } attempt && fileAttempt != attempt) continue;
                if (live is not null && (file == ManifestJson.FileName || fileAttempt == live.AttemptId)) continue;
                if (livePending is not null && fileAttempt == livePending.AttemptId) continue;
                await Store.DeleteAsync(entry.Key);
            }
            S.Deletions.Remove(deletion);
        }
        await state.WriteStateAsync();
    }

    /// <summary>
    /// Finishes owed deletions, then deletes the shards killed ranks left under the run prefix: those of
    /// attempts that are neither committed nor pending (they can never be reported now) and that their
    /// folder's manifest does not reference. Manifests are never deleted here: one the catalog does not
    /// know (lost grain state, a commit that crashed before its state was saved) is a checkpoint someone
    /// may load, so it is kept and logged. Best effort: the new epoch is already saved, so a storage
    /// error is logged rather than failing the attempt; the sweep and the next attempt try again.
    /// </summary>
    private async Task CleanUpForNewAttemptAsync()
    {
        try
        {
            await RunDeletionsAsync();
            var collected = 0;
            foreach (var name in await CheckpointFoldersAsync()) collected += await CollectOrphansAsync(name);
            if (collected > 0) logger.LogInformation("Run {Run}: collected {Count} orphan shard(s) of interrupted saves", _id, collected);
        }
        catch (Exception e)
        {
            logger.LogWarning(e, "Run {Run}: cleaning up after earlier attempts failed; it is retried later", _id);
        }
    }

    private async Task<int> CollectOrphansAsync(string name)
    {
        var folder = $"{_id.StorePrefix}/{name}";
        var committed = S.Catalog.FirstOrDefault(c => c.Name == name);
        if (committed is null && await Store.GetEntryAsync($"{folder}/{ManifestJson.FileName}") is not null)
            logger.LogWarning("Run {Run}: {Folder} holds a manifest the catalog does not know (lost grain state or an interrupted commit); it and its shards are kept", _id, folder);
        string[] live = [.. new[] { committed?.AttemptId, S.Pending.GetValueOrDefault(name)?.AttemptId }.OfType<string>()];
        // Blob timestamps need no minimum age: every rank of an earlier attempt is fenced off by the new epoch.
        return await CheckpointFiles.DeleteOrphanShardsAsync(Store, folder, TimeSpan.Zero, live);
    }

    /// <summary>Names of the checkpoint folders under the run prefix, committed or not.</summary>
    private async Task<SortedSet<string>> CheckpointFoldersAsync()
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        var prefix = _id.StorePrefix + "/";
        await foreach (var entry in Store.ListAsync(prefix))
        {
            var slash = entry.Key.IndexOf('/', prefix.Length);
            if (slash > prefix.Length) names.Add(entry.Key[prefix.Length..slash]);
        }
        return names;
    }

    private Task ReportRetainedAsync() =>
        GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant).ReportRetainedBytes(_id.Run, S.Catalog.Sum(c => c.Bytes));

    private SavePlan PlanFor(PendingCheckpoint pending, int rank) => new(
        pending.Name, pending.AttemptId, rank, pending.WorldSize,
        $"{_id.StorePrefix}/{pending.Name}",
        CheckpointFiles.ShardName(rank, pending.WorldSize, pending.AttemptId),
        pending.KeysByRank[rank]);

    private void CheckEpoch(long epoch)
    {
        if (epoch < S.Epoch) throw new StaleAttemptException($"Run {_id} is at attempt {S.Epoch}; a call from attempt {epoch} is stale (the job was restarted).");
        if (epoch > S.Epoch) throw new StaleAttemptException($"Run {_id} has no attempt {epoch} (current {S.Epoch}); call StartAttempt first.");
    }

    private void EnsureCreated()
    {
        if (!S.Created) throw new RunNotFoundException($"Run {_id} does not exist.");
    }

    private RunView View() => new(_id, S.Policy, S.Epoch, S.LastCheckpoint, S.Catalog.ToList(),
        S.Pending.Values.Select(p => new PendingView(p.Name, p.Epoch, p.WorldSize, p.Reports.Keys.Order().ToList(), p.StartedUtc)).ToList(),
        S.CheckpointRequest, S.CreatedUtc, RuntimeIdentity);
}

/// <summary>Names of the grain storage providers the silo must register.</summary>
public static class GrainStorage
{
    public const string Runs = "runs";
    public const string Tenants = "tenants";
}
