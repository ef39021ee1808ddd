namespace Checkpointing.Contracts;

/// <summary>What anyone holding the run's tenant credential reads: the run, its catalog and its history.</summary>
[GrainAccess(CallerAccess.Tenant)]
public interface IRunReads : IGrainWithStringKey
{
    /// <summary>The run: policy, attempt, catalog, pending checkpoints, checkpoint request.</summary>
    Task<RunView> Get();

    /// <summary>The run in one line: health, last checkpoint and its age, retained bytes, commits in the last hour.</summary>
    Task<RunSummary> GetSummary();

    /// <summary>The run's recent progress (iteration, loss, step time) from its ranks' heartbeats, oldest first; in memory only, so it starts over when the grain moves.</summary>
    Task<IReadOnlyList<ProgressPoint>> GetProgress();

    /// <summary>The checkpoint a resume loads: the one the tag names, null before the first commit.</summary>
    Task<CheckpointRecord?> GetLastCheckpoint();

    /// <summary>The committed checkpoints, oldest first.</summary>
    Task<IReadOnlyList<CheckpointRecord>> ListCheckpoints();

    /// <summary>The run's checkpoint history, oldest first: committed saves with their timings, and loads (resumes).</summary>
    Task<IReadOnlyList<HistoryEntry>> GetHistory();
}
