namespace Checkpointing.TrainerAgent;

/// <summary>Storage stayed unavailable for longer than a rank's outage budget; the checkpoint was not committed.</summary>
public sealed class StorageOutageException(TimeSpan budget, Exception last)
    : IOException($"storage unavailable for longer than the outage budget of {budget.TotalSeconds:0} s (Storage:OutageBudget): {last.Message}", last)
{
    /// <summary>The outage budget that ran out (<see cref="RankCommitter.OutageBudget"/>).</summary>
    public TimeSpan Budget { get; } = budget;
}
