using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Concurrency;

namespace Checkpointing.Grains;

/// <summary>
/// The single writer of one run's catalog (docs/cluster.md): a shell that maps the grain interface onto the rules,
/// the commit protocol (<see cref="CommitProtocol"/>), retention by reference (<see cref="RunRetention"/>), storage
/// garbage collection (<see cref="RunJanitor"/>) and the tenant's grants (<see cref="AccountingChannel"/>), and adds what
/// Orleans gives: one activation, persistence, timers and reminders. Reentrant, so that ranks long-polling
/// <see cref="AwaitCommit"/> never hold up the Begins and reports they wait for; every change to durable state runs
/// under <see cref="_exclusive"/>, one at a time. Placed on the silo that receives its first call: a client sends every
/// call for one grain through the same gateway, so an agent's calls are served where they arrive.
/// </summary>
[Reentrant]
[Orleans.Placement.PreferLocalPlacement]
internal sealed class TrainingRunGrain(
    [PersistentState("run", GrainStorage.Runs)] IPersistentState<RunState> state,
    [PersistentState("history", GrainStorage.Runs)] IPersistentState<RunHistory> history,
    [PersistentState("catalog", GrainStorage.Runs)] IPersistentState<CatalogArchive> archive,
    ICheckpointStoreProvider stores, IOptions<RunGrainOptions> options, TimeProvider time, SiloMetrics metrics,
    ILogger<TrainingRunGrain> logger) : Grain, ITrainingRunGrain, IRunAccounting, IRemindable, IRunShell
{
    /// <summary>How many sweep periods a history entry may wait to be written (5 minutes by default).</summary>
    private const int HistoryDelayInSweeps = 5;
    private readonly SemaphoreSlim _exclusive = new(1, 1);
    private readonly RunCatalog _catalog = new(state, archive, options.Value.CatalogTailLimit);
    private readonly AccountingChannel _accounting = new();
    private RunId _id = null!;
    private CommitProtocol _commits = null!;
    private RunRetention _retention = null!;
    private RunJanitor _janitor = null!;
    private RunHistoryLog _history = null!;
    private SweepReminder _reminder = null!;
    private TenantReporter _tenantReports = null!;
    private StoreGrants _grants = null!;
    private RunHealthMonitor _health = null!;
    private MemoryTier _memory = null!;
    private IDisposable? _tracking;
    private Task? _sealing;
    /// <summary>A state write failed: memory may be ahead of what is durable until the grain deactivates, so no change may build on it.</summary>
    private bool _reloading;
    private RunState State => state.State;
    private RunGrainOptions Options => options.Value;
    private ITenantAccounting Tenant => GrainFactory.GetGrain<ITenantAccounting>(_id.Tenant);
    private KeyValuePair<string, object?> TenantTag => SiloMetrics.Tenant(_id.Tenant);

    /// <summary>Builds the rules around the persisted state, restores the catalog and the history, and starts the sweep timer.</summary>
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _id = RunId.Parse(this.GetPrimaryKeyString());
        _retention = new RunRetention(state, _catalog, _id);
        _janitor = new RunJanitor(stores.Store, _id, state, _catalog, _retention, () => metrics.Deletions.Add(1, TenantTag), logger);
        _history = new RunHistoryLog(history, logger, _id);
        _commits = new CommitProtocol(_id, state, _catalog, _retention, _janitor, _accounting, () => Tenant, stores.Store, Options, time, metrics, _history, this, logger);
        _reminder = new SweepReminder(this, Options.ReminderPeriod, _id, logger);
        _tenantReports = new TenantReporter(this, _accounting, () => Tenant, _id.Run, () => _retention.RetainedBytes, Options.TenantReportDelay, logger);
        _grants = new StoreGrants(_id, state, _catalog, stores.Store, _commits.AttemptFor, Options, time, this);
        _health = new RunHealthMonitor(time, Options);
        _memory = new MemoryTier(_id, state, _catalog, _history, this, Options, time, logger);
        _catalog.Restore();
        _health.NewAttempt(State.Epoch);
        _tracking = metrics.TrackRun(_id, _health.View);
        await _history.AdoptAsync(State.LegacyHistory);
        this.RegisterGrainTimer(SweepAsync, new GrainTimerCreationOptions(Options.SweepPeriod, Options.SweepPeriod) { Interleave = false, KeepAlive = false });
    }

    /// <summary>Tells waiting ranks to report again, writes due history, waits for an archive write and reports to the tenant.</summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _commits.Deactivating();
        _tracking?.Dispose();
        await _history.FlushIfDueAsync(time.GetUtcNow(), maxDelay: null);
        if (_sealing is { } sealing) await sealing; // the next activation must read the archive this one wrote
        await _tenantReports.DeactivatingAsync();
    }

    public Task<RunView> Create(PeriodicPolicy policy) => Exclusive(() => CreateCore(policy));

    private async Task<RunView> CreateCore(PeriodicPolicy policy)
    {
        policy.Validated();
        if (State.Created)
            return State.Policy == policy ? View() : throw new RunRefusedException($"Run {_id} already exists with policy {State.Policy}; use SetPolicy to change it.");
        await Tenant.RegisterRun(_id.Run);
        (State.Created, State.Policy, State.CreatedUtc) = (true, policy, time.GetUtcNow());
        await WriteOrReloadAsync();
        logger.LogInformation("Run {Run} created with {Policy}", _id, policy);
        return View();
    }

    public Task<CatalogRecoveryReport> RecoverCatalog(PeriodicPolicy policyIfLost) => Exclusive(async () =>
    {
        if (!State.Created) await CreateCore(policyIfLost);
        var report = await CatalogRecovery.RecoverAsync(stores.Store, _id, State, _catalog);
        await WriteOrReloadAsync();
        AfterDurableChange();
        logger.LogWarning("Run {Run}: catalog recovered from the store: adopted {Adopted}, refused {Refused}; last = {Last}",
            _id, string.Join(", ", report.Adopted), string.Join("; ", report.Refused.Select(r => $"{r.Name}: {r.Reason}")), report.LastCheckpoint);
        return report;
    });

    public Task<RunView> Get() => Read(View);

    public Task<RunView> SetPolicy(PeriodicPolicy policy) => Exclusive(async () =>
    {
        EnsureCreated();
        State.Policy = policy.Validated();
        _commits.Evict();
        await WriteOrReloadAsync();
        AfterDurableChange();
        return View();
    });

    public Task<long> StartAttempt() => Exclusive(async () =>
    {
        EnsureCreated();
        State.Epoch++;
        _commits.AbortStale();
        _memory.NewAttempt();
        await WriteOrReloadAsync();
        _health.NewAttempt(State.Epoch);
        await _janitor.CleanUpForNewAttemptAsync();
        logger.LogInformation("Run {Run} attempt {Epoch} started", _id, State.Epoch);
        return State.Epoch;
    });

    public Task<CheckpointAttempt> BeginCheckpoint(BeginCheckpointRequest request) => _commits.BeginAsync(request);

    public Task<ShardAck> ReportShard(ShardReport report, TimeSpan waitForCommit = default) => _commits.ReportAsync(report, waitForCommit);

    public Task<CommitWait> AwaitCommit(CommitWaitRequest request) => _commits.AwaitAsync(request);

    public Task<MemoryPlacement?> PlaceMemorySnapshots(HolderAnnouncement holder, TimeSpan waitForWorld = default) => _memory.PlaceAsync(holder, waitForWorld);

    public Task<MemoryCommitAck> ReportMemorySnapshot(MemorySnapshotReport report, TimeSpan waitForCommit = default) => _memory.ReportAsync(report, waitForCommit);

    public Task<ResumePlan> PlanResume(ResumeRequest request) => _memory.PlanAsync(request);

    public Task<bool> AbandonMemorySnapshot(long epoch, int rank, long iteration) => _memory.AbandonAsync(epoch, rank, iteration);

    public Task<ResumeDecision> AgreeResume(ResumeOutcome outcome, TimeSpan maxWait) => _memory.AgreeAsync(outcome, maxWait);

    public Task<IReadOnlyList<HistoryEntry>> GetHistory() => Read<IReadOnlyList<HistoryEntry>>(() => _history.Entries.ToList());

    /// <summary>
    /// Records that a rank loaded a checkpoint of this run, in the run's history: kept in memory and written with the
    /// history's next batch, apart from the run's state (at the latest about five sweep periods later, or when the activation
    /// ends; a silo crash before then loses it). Refused with <see cref="RunNotFoundException"/> for a run that does not exist,
    /// <see cref="ArgumentException"/> for an invalid checkpoint name, and <see cref="RunRefusedException"/> for a negative
    /// rank or byte count, or a duration that is negative or not finite.
    /// </summary>
    public Task RecordLoad(LoadReport load) => Record(() => _history.AddLoad(load, time.GetUtcNow()));

    public Task<StoreGrant?> GrantShardWrite(string name, string attemptId, int rank, long epoch) => _grants.WriteAsync(name, attemptId, rank, epoch);

    public Task<IReadOnlyList<StoreGrant>> GrantCheckpointRead(string name) => _grants.ReadAsync(name);

    /// <summary>After a failed write the activation's state is ahead of what is durable: deactivate, so the next call reloads it.</summary>
    public async Task WriteOrReloadAsync()
    {
        try
        {
            await state.WriteStateAsync();
        }
        catch (Exception e)
        {
            // Often the write landed and only its answer was lost: the reloaded state says which. RunMovedException is transient.
            Reload();
            logger.LogWarning(e, "Run {Run}: saving its state failed; the grain reloads what is durable", _id);
            throw new RunMovedException($"Run {_id} could not save its state ({e.GetType().Name}: {e.Message}); it reloads: try again.");
        }
    }

    private void Reload()
    {
        _reloading = true;
        DeactivateOnIdle();
    }

    public Task RevokeGrant() => _tenantReports.RevokeAsync();

    /// <summary>Off the acknowledgement path: owed deletions, the tenant's view of retained bytes, the sweep reminder, archiving older catalog entries.</summary>
    public void AfterDurableChange()
    {
        _janitor.StartOwed();
        _tenantReports.Changed();
        if (State.Pending.Count > 0 || State.Deletions.Count > 0) _reminder.Ensure();
        if (_catalog.SealDue && _sealing is not { IsCompleted: false }) _sealing = SealCatalogAsync();
    }

    /// <summary>Moves older catalog entries out of the state every commit writes; a failure is logged and the grain reloads what is durable.</summary>
    private async Task SealCatalogAsync()
    {
        try { await Exclusive(async () => { if (State.Created && _catalog.SealDue) await _catalog.SealAsync(WriteOrReloadAsync); return true; }); }
        catch (Exception e)
        {
            Reload(); // an archive write that failed may still have landed: reload both parts
            logger.LogWarning(e, "Run {Run}: archiving older catalog entries failed; the grain reloads what is durable", _id);
        }
    }

    public Task<CheckpointRecord?> GetLastCheckpoint() => Read(() => State.LastCheckpoint is { } last ? _catalog.Find(last) : null);

    public Task<IReadOnlyList<CheckpointRecord>> ListCheckpoints() => Read<IReadOnlyList<CheckpointRecord>>(() => _catalog.Entries.ToList());

    public Task TagLastCheckpoint(string name) => Exclusive(async () =>
    {
        EnsureCreated();
        if (_catalog.Find(name) is null) throw new RunRefusedException($"Run {_id} has no committed checkpoint {name}.");
        State.LastCheckpoint = name;
        await WriteOrReloadAsync();
        return true;
    });

    public Task RequestCheckpointNow(string reason) => CheckpointRequests.RequestAsync(this, state, reason, time, logger, _id);

    public Task Heartbeat(RankHeartbeat beat) => Record(() =>
    {
        _health.Record(beat, State.Epoch);
        ObserveCheckpoints(); // what the metrics see between reads of the run
    });

    public Task<RunSummary> GetSummary() => Read(() =>
    {
        var health = HealthView();
        var since = time.GetUtcNow().AddHours(-1);
        return new RunSummary(_id.Run, health.State, State.LastCheckpoint, _catalog.Entries.Count > 0 ? _catalog.Entries.Max(c => c.CommittedUtc) : null,
            _retention.RetainedBytes, _history.Entries.Count(h => h.Kind == HistoryEntry.Save && h.AtUtc >= since), health.Iteration, health.LastHeartbeatUtc);
    });

    public Task<IReadOnlyList<ProgressPoint>> GetProgress() => Read(() => _health.Progress);

    public Task<StepDirective> GetDirective(long epoch, long iteration) => CheckpointRequests.DirectiveAsync(this, state, epoch, iteration);

    public Task Delete() => Exclusive(async () =>
    {
        EnsureCreated();
        var deleted = await _janitor.DeleteEverythingAsync();
        _accounting.DropGrant();
        _tenantReports.Cancel();
        await Tenant.UnregisterRun(_id.Run);
        try
        {
            await _catalog.ClearArchiveAsync(); // first: a run created again under this name must not find the old archive
            await state.ClearStateAsync();
        }
        catch { Reload(); throw; } // the clear may have landed: reload what is durable
        state.State = new RunState();
        _catalog.Restore();
        await _history.ClearAsync();
        await _reminder.UnregisterIfRegisteredAsync();
        logger.LogInformation("Run {Run} deleted ({Objects} objects)", _id, deleted);
        DeactivateOnIdle();
        return true;
    });

    /// <summary>The sweep reminder fired (on any silo, also after a crash): sweeps, and unregisters it once nothing is pending or owed.</summary>
    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != SweepReminder.Name) return;
        _reminder.Fired();
        await SweepAsync(CancellationToken.None);
        if (!State.Created || (State.Pending.Count == 0 && State.Deletions.Count == 0)) await _reminder.UnregisterAsync();
    }

    /// <summary>Collects checkpoints abandoned mid-save, gives back an expired grant and retries owed deletions.</summary>
    private Task SweepAsync(CancellationToken cancellationToken) => Exclusive(async () =>
    {
        if (!State.Created) return true;
        var now = time.GetUtcNow();
        if (_commits.AbortExpired(now)) await WriteOrReloadAsync();
        _accounting.ExpireGrant(Tenant, _id.Run, () => _retention.RetainedBytes, logger, now);
        await _history.FlushIfDueAsync(now, Options.SweepPeriod * HistoryDelayInSweeps);
        AfterDurableChange();
        return true;
    });

    /// <summary>Runs <paramref name="change"/> alone among changes to durable state; <see cref="RunMovedException"/> while reloading.</summary>
    public async Task<T> Exclusive<T>(Func<Task<T>> change)
    {
        await _exclusive.WaitAsync();
        try
        {
            if (_reloading) throw new RunMovedException($"Run {_id} is reloading its state after a failed write; try again.");
            return await change();
        }
        finally { _exclusive.Release(); }
    }

    private Task<T> Read<T>(Func<T> read)
    {
        EnsureCreated();
        return Task.FromResult(read());
    }

    private Task Record(Action record)
    {
        EnsureCreated();
        record();
        return Task.CompletedTask;
    }

    /// <summary>Refuses a call from another attempt than the current one with <see cref="StaleAttemptException"/>: an older one, or one not started yet.</summary>
    public void CheckEpoch(long epoch)
    {
        if (epoch < State.Epoch) throw new StaleAttemptException($"Run {_id} is at attempt {State.Epoch}; a call from attempt {epoch} is stale (the job was restarted).");
        if (epoch > State.Epoch) throw new StaleAttemptException($"Run {_id} has no attempt {epoch} (current {State.Epoch}); call StartAttempt first.");
    }

    /// <summary>Keeps the activation for at least <paramref name="period"/>.</summary>
    public void KeepActive(TimeSpan period) => DelayDeactivation(period);

    /// <summary>Refuses a call on a run that was never created or was deleted, with <see cref="RunNotFoundException"/>.</summary>
    public void EnsureCreated()
    {
        if (!State.Created) throw new RunNotFoundException($"Run {_id} does not exist.");
    }

    private RunView View() => new(_id, State.Policy, State.Epoch, State.LastCheckpoint, _catalog.Entries.ToList(),
        State.Pending.Values.Select(PendingViewOf).ToList(), State.CheckpointRequest, State.CreatedUtc, RuntimeIdentity, _retention.HeldBytes, HealthView(), _memory.Recorded);

    private PendingView PendingViewOf(PendingCheckpoint pending)
    {
        var missing = _commits.ReportsMissing(pending);
        return new PendingView(pending.Name, pending.Epoch, pending.WorldSize, pending.WorldSize - missing.Count, pending.StartedUtc, missing);
    }

    /// <summary>The run's health now.</summary>
    private RunHealthView HealthView()
    {
        ObserveCheckpoints();
        return _health.View();
    }

    /// <summary>Tells the health monitor what only the state knows: finished once the final checkpoint is the last one, checkpointing while this attempt has one pending.</summary>
    private void ObserveCheckpoints() => _health.Observe(
        finished: State.Policy.MaxIter is not null && State.LastCheckpoint == State.Policy.FinalName,
        checkpointing: State.Pending.Values.Any(p => p.Epoch == State.Epoch));
}
