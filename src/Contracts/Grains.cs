using Orleans.Concurrency;

namespace Checkpointing.Contracts;

/// <summary>
/// One training run (key "tenant/run"): owns its policy, catalog, last-checkpoint tag and the
/// two-phase commit of multi-rank checkpoints. Bytes never pass through it; only shard metadata.
/// Every member may be called by a holder of the run's tenant credential.
/// </summary>
[GrainAccess(CallerAccess.Tenant)]
public interface ITrainingRunGrain : IGrainWithStringKey
{
    /// <summary>Creates the run with its policy; repeating the same call is a no-op, a different policy is refused.</summary>
    Task<RunView> Create(PeriodicPolicy policy);

    Task<RunView> Get();

    Task<RunView> SetPolicy(PeriodicPolicy policy);

    /// <summary>Starts a new attempt of the job: returns the new epoch. Calls carrying an older epoch are rejected from now on.</summary>
    Task<long> StartAttempt();

    /// <summary>Phase one. The first rank's Begin makes the attempt durable; the other ranks' Begins (and retries) get the same attempt.</summary>
    Task<CheckpointAttempt> BeginCheckpoint(BeginCheckpointRequest request);

    /// <summary>
    /// Phase two. Reports are held in memory and are idempotent: the same report sent again is acknowledged again.
    /// With <paramref name="waitForCommit"/>, a report that does not complete the set waits up to that long for the
    /// commit (one call instead of a report and a first <see cref="AwaitCommit"/>).
    /// </summary>
    Task<ShardAck> ReportShard(ShardReport report, TimeSpan waitForCommit = default);

    /// <summary>
    /// Long-polls (at most <see cref="CommitWaitRequest.MaxWait"/>) until the attempt this rank reported commits.
    /// The run grain is reentrant: waiting ranks do not hold up the Begins and reports they wait for.
    /// </summary>
    Task<CommitWait> AwaitCommit(CommitWaitRequest request);

    Task<CheckpointRecord?> GetLastCheckpoint();

    Task<IReadOnlyList<CheckpointRecord>> ListCheckpoints();

    /// <summary>Moves the last-checkpoint tag to a committed checkpoint.</summary>
    Task TagLastCheckpoint(string name);

    Task RequestCheckpointNow(string reason);

    /// <summary>
    /// Polled by every rank at every step: an outstanding checkpoint-now request (with the iteration
    /// all ranks save at, two steps after the first rank saw it) and the current policy.
    /// </summary>
    Task<StepDirective> GetDirective(long epoch, long iteration);

    /// <summary>Deletes every checkpoint's blobs and the run's state.</summary>
    Task Delete();

    /// <summary>The run's checkpoint history, oldest first: committed saves with their timings, and loads (resumes).</summary>
    Task<IReadOnlyList<HistoryEntry>> GetHistory();

    /// <summary>Records that a rank loaded a checkpoint of this run; kept in memory and persisted with the run's next state write.</summary>
    Task RecordLoad(LoadReport load);

    /// <summary>
    /// Operator: after the run's state was lost (a storage restore, someone deleting it), adopts the committed checkpoints
    /// in the store that the catalog does not list, each only once it verifies end to end, and tags the newest when the
    /// tag is gone. A run whose state is gone altogether is created again with <paramref name="policyIfLost"/>.
    /// </summary>
    [GrainAccess(CallerAccess.Operator)]
    Task<CatalogRecoveryReport> RecoverCatalog(PeriodicPolicy policyIfLost);
}

/// <summary>A tenant (key = tenant name): what its credential holders may read, and its limits.</summary>
[GrainAccess(CallerAccess.Tenant)]
public interface ITenantGrain : IGrainWithStringKey
{
    Task<TenantView> Get();

    [GrainAccess(CallerAccess.Operator)]
    Task<TenantView> SetLimits(TenantLimits limits);

    Task<IReadOnlyList<string>> ListRuns();
}

/// <summary>
/// The tenant's run registry and retained-bytes accounting, called only by the tenant's run grains
/// (key = tenant name, same activation as <see cref="ITenantGrain"/>). Clients are refused at the silo.
/// A run commits against a grant it holds (DESIGN.md §13): the tenant is called when the run needs
/// more than its grant, when the grant's lease ends, and (off the commit path) to report retained bytes.
/// </summary>
[GrainAccess(CallerAccess.Internal)]
public interface ITenantAccounting : IGrainWithStringKey
{
    /// <summary>Registers a new run; refused when the tenant is at its run limit.</summary>
    Task RegisterRun(string run);

    Task UnregisterRun(string run);

    /// <summary>Grants the run at least <paramref name="retainedBytes"/>; refuses (throws) when that would take the tenant over its limit.</summary>
    [AlwaysInterleave]
    Task<RetainedBytesGrant> Reserve(string run, long retainedBytes);

    /// <summary>What the run retains now; with <paramref name="releaseGrant"/> the run gives its grant back (it no longer commits against it).</summary>
    [AlwaysInterleave]
    Task Report(string run, long retainedBytes, bool releaseGrant);
}

/// <summary>The run side of the accounting: called by the run's tenant grain only.</summary>
[GrainAccess(CallerAccess.Internal)]
public interface IRunAccounting : IGrainWithStringKey
{
    /// <summary>Drops the run's grant (new tenant limits): its next commit asks the tenant again.</summary>
    Task RevokeGrant();
}
