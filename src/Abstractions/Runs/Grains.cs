namespace Checkpointing.Abstractions.Runs;

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

    Task<SavePlan> BeginCheckpoint(BeginCheckpointRequest request);

    Task<ShardAck> ReportShard(ShardReport report);

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
/// The tenant's run registry and byte accounting, called only by the tenant's run grains (key =
/// tenant name, same activation as <see cref="ITenantGrain"/>). Clients are refused at the silo.
/// </summary>
[GrainAccess(CallerAccess.Internal)]
public interface ITenantAccounting : IGrainWithStringKey
{
    /// <summary>Registers a new run; refused when the tenant is at its run limit.</summary>
    Task RegisterRun(string run);

    Task UnregisterRun(string run);

    /// <summary>Refuses (throws) when the run's retained bytes would take the tenant over its limit.</summary>
    Task CheckRetainedBytes(string run, long runRetainedBytes);

    Task ReportRetainedBytes(string run, long runRetainedBytes);
}
