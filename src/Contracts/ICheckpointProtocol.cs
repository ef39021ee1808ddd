namespace Checkpointing.Contracts;

/// <summary>
/// What a rank's agent calls on its run grain, in the order of a job's life: StartAttempt once per job (re)start, every
/// step GetDirective, and per checkpoint the save protocol: 1. <see cref="BeginCheckpoint"/>, 2. the rank writes its
/// shard straight into the store, 3. <see cref="ReportShard"/>, 4. <see cref="AwaitCommit"/>; after a load, RecordLoad.
/// Bytes never pass through the grain, only shard metadata.
/// </summary>
[GrainAccess(CallerAccess.Tenant)]
public interface ICheckpointProtocol : IGrainWithStringKey
{
    /// <summary>Starts a new attempt of the job: returns the new epoch. Calls carrying an older epoch are rejected from now on.</summary>
    Task<long> StartAttempt();

    /// <summary>
    /// A rank's sign of life and progress, sent every few seconds by its agent apart from its steps (so a rank blocked in a
    /// save or a collective still counts as alive). Kept in memory only: it never writes the run's state. A beat from another
    /// attempt than the current one is ignored.
    /// </summary>
    Task Heartbeat(RankHeartbeat beat);

    /// <summary>
    /// Polled by every rank at every step: an outstanding checkpoint-now request (with the iteration
    /// all ranks save at, two steps after the first rank saw it) and the current policy.
    /// </summary>
    Task<StepDirective> GetDirective(long epoch, long iteration);

    /// <summary>Step 1 of a save (step 2: the rank writes its shard into the store). The first rank's Begin makes the attempt durable; the other ranks' Begins (and retries) get the same attempt.</summary>
    Task<CheckpointAttempt> BeginCheckpoint(BeginCheckpointRequest request);

    /// <summary>
    /// Step 3. Reports are held in memory and are idempotent: the same report sent again is acknowledged again.
    /// With <paramref name="waitForCommit"/>, a report that does not complete the set waits up to that long for the
    /// commit (one call instead of a report and a first <see cref="AwaitCommit"/>).
    /// </summary>
    Task<ShardAck> ReportShard(ShardReport report, TimeSpan waitForCommit = default);

    /// <summary>
    /// Step 4. Long-polls (at most <see cref="CommitWaitRequest.MaxWait"/>) until the attempt this rank reported commits.
    /// The run grain is reentrant: waiting ranks do not hold up the Begins and reports they wait for.
    /// </summary>
    Task<CommitWait> AwaitCommit(CommitWaitRequest request);

    /// <summary>
    /// Records that a rank loaded a checkpoint of this run in the run's history, which is persisted apart from the run's
    /// state and in batches: a silo crash may lose the newest entries, never a checkpoint.
    /// </summary>
    Task RecordLoad(LoadReport load);

    /// <summary>
    /// Step 2 for a rank that holds no storage credential: access that writes exactly this rank's shard of attempt
    /// <paramref name="attemptId"/> of pending checkpoint <paramref name="name"/>, until the pending checkpoint would expire.
    /// Null when the silo's checkpoint store grants no access (not Azure Blob); refused with <see cref="RunRefusedException"/>
    /// for an attempt that is not pending, and with <see cref="StaleAttemptException"/> for another epoch.
    /// </summary>
    Task<StoreGrant?> GrantShardWrite(string name, string attemptId, int rank, long epoch);

    /// <summary>
    /// Read access, for an hour, to exactly the objects of committed checkpoint <paramref name="name"/> of this run: its
    /// manifest and every shard it holds or reuses. Empty when the silo's store grants no access; refused with
    /// <see cref="RunRefusedException"/> for a checkpoint the catalog does not hold.
    /// </summary>
    Task<IReadOnlyList<StoreGrant>> GrantCheckpointRead(string name);

    /// <summary>
    /// Memory tier (docs/memory-tier.md): records where rank <see cref="HolderAnnouncement.Rank"/>'s holder is and answers where that
    /// rank's snapshots go (its own holder, then its replicas' in a ring that prefers other hosts). Until every rank of the world
    /// announced one, waits up to <paramref name="waitForWorld"/> for them, then answers null. Kept in memory; ranks announce
    /// again before every snapshot. Another epoch is refused.
    /// </summary>
    Task<MemoryPlacement?> PlaceMemorySnapshots(HolderAnnouncement holder, TimeSpan waitForWorld = default);

    /// <summary>
    /// A rank's snapshot is held on its holders. The report that completes the set commits the memory checkpoint: one state
    /// write recording where every rank's bytes live, and only when it is newer than the one recorded. Reports are held in
    /// memory (a silo failure loses an incomplete set, which is then never used); with <paramref name="waitForCommit"/> a report
    /// that does not complete the set waits up to that long for the commit.
    /// </summary>
    Task<MemoryCommitAck> ReportMemorySnapshot(MemorySnapshotReport report, TimeSpan waitForCommit = default);

    /// <summary>
    /// A rank waited past its limit for the other ranks' reports of memory checkpoint <paramref name="iteration"/>: true when it
    /// committed after all; false when it did not, and then it never will (later reports of it are answered "not committed"),
    /// so the rank may free its snapshot.
    /// </summary>
    Task<bool> AbandonMemorySnapshot(long epoch, int rank, long iteration);

    /// <summary>Where this rank resumes from: the newest committed memory checkpoint when it is newer than the durable tag and usable, else the durable tag.</summary>
    Task<ResumePlan> PlanResume(ResumeRequest request);

    /// <summary>
    /// A rank fetched (or failed to fetch) its snapshot of the planned memory checkpoint. The attempt's decision is made once:
    /// memory when every rank of the world fetched it, durable as soon as one could not (the memory checkpoint is then marked
    /// unusable and the history says why). Long-polls up to <paramref name="maxWait"/> (capped) for the other ranks.
    /// </summary>
    Task<ResumeDecision> AgreeResume(ResumeOutcome outcome, TimeSpan maxWait);
}
