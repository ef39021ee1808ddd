namespace Checkpointing.Contracts;

/// <summary>
/// A run's health, computed by its grain from the ranks' heartbeats, its pending checkpoints and its catalog
/// (docs/operating.md, "Run health"). When several hold, the first in this order from the end wins: a finished run
/// is finished, a run that lost every rank has failed, one that lost some has a rank missing, and so on.
/// </summary>
public enum RunHealth
{
    /// <summary>No rank of the current attempt has been heard from yet (created, or a new attempt not started).</summary>
    Waiting,
    /// <summary>Every rank is heard from and iterations advance.</summary>
    Healthy,
    /// <summary>Every rank is heard from and iterations have not advanced for longer than the stall limit.</summary>
    Stalled,
    /// <summary>A checkpoint is pending and every rank is heard from.</summary>
    Checkpointing,
    /// <summary>Some ranks have been silent for longer than the missing limit (<see cref="RunHealthView.MissingRanks"/>).</summary>
    RankMissing,
    /// <summary>Every rank has been silent for longer than the missing limit, and the run did not finish.</summary>
    Failed,
    /// <summary>The run committed its final checkpoint (the policy's max_iter was reached).</summary>
    Finished,
}
