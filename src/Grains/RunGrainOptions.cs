namespace Checkpointing.Grains;

/// <summary>Run-grain settings from the silo's configuration (section "Runs").</summary>
public sealed class RunGrainOptions
{
    /// <summary>The configuration section these settings are read from.</summary>
    public const string Section = "Runs";

    /// <summary>A pending checkpoint with no progress for this long is abandoned and its shards collected.</summary>
    public TimeSpan PendingTimeout { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How often an active run grain looks for abandoned checkpoints and owed deletions.</summary>
    public TimeSpan SweepPeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Period of the durable sweep reminder a run holds while it has pending checkpoints or owed
    /// deletions: it fires on a surviving silo after this run's silo crashed. Orleans' minimum reminder period applies.
    /// </summary>
    public TimeSpan ReminderPeriod { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The longest a rank's AwaitCommit call is held before it answers "waiting" (below the client's response timeout).</summary>
    public TimeSpan MaxCommitWait { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A wait a caller asked for, at most <see cref="MaxCommitWait"/>.</summary>
    public TimeSpan CappedWait(TimeSpan wait) => wait < MaxCommitWait ? wait : MaxCommitWait;

    /// <summary>How many other agents' holders keep a replica of each rank's memory-tier snapshot (docs/memory-tier.md); 0: only the rank's own holder.</summary>
    public int MemoryReplicas { get; set; } = 1;

    /// <summary>
    /// How long a run waits before telling its tenant a change in its retained bytes, so the changes of many
    /// commits ride on one report. The tenant's view of a run lags by this much; quotas do not depend on it
    /// (a run commits only within the grant its tenant gave it).
    /// </summary>
    public TimeSpan TenantReportDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Whether a commit checks each shard it wrote against the store's length and charges what the store holds (default).
    /// False only where the silo's store is not the one ranks write to (<c>Storage:Checkpoints=Memory</c>: each silo keeps
    /// its own, for experiments): quotas then count the sizes ranks report.
    /// </summary>
    public bool ChecksStoredSizes { get; set; } = true;

    /// <summary>
    /// A rank not heard from for this long is missing (<see cref="Contracts.RunHealth.RankMissing"/>): three of the agents'
    /// default heartbeat intervals (5 s), so one late beat is not an alarm.
    /// </summary>
    public TimeSpan RankMissingAfter { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A run whose iteration has not advanced for this many of its usual step times (and <see cref="StallMinimum"/>) is stalled.</summary>
    public int StallSteps { get; set; } = 10;

    /// <summary>The shortest stall reported: loads, compilation and slow first steps take this long without being a stall.</summary>
    public TimeSpan StallMinimum { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>How many catalog entries the run's state (written on every commit) holds before older ones move to the run's archive.</summary>
    public int CatalogTailLimit { get; set; } = RunCatalog.DefaultTailLimit;

    /// <summary>The smallest <see cref="CatalogTailLimit"/>: a quarter of it stays in the run's state when entries move.</summary>
    public const int MinCatalogTailLimit = 4;
}
