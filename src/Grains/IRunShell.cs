namespace Checkpointing.Grains;

/// <summary>What the run's rules need from the grain that hosts them.</summary>
internal interface IRunShell
{
    /// <summary>Runs <paramref name="change"/> alone among the grain's changes to durable state.</summary>
    Task<T> Exclusive<T>(Func<Task<T>> change);

    /// <summary>Writes the run's state; on failure the grain reloads what is durable and the caller gets a transient error.</summary>
    Task WriteOrReloadAsync();

    /// <summary>Starts what follows a durable change off the acknowledgement path: owed deletions, the tenant's report, the sweep reminder.</summary>
    void AfterDurableChange();

    /// <summary>Refuses a call on a run that was never created or was deleted (<see cref="Contracts.RunNotFoundException"/>).</summary>
    void EnsureCreated();

    /// <summary>Refuses a call from another attempt (<see cref="Contracts.StaleAttemptException"/>).</summary>
    void CheckEpoch(long epoch);

    /// <summary>Keeps the activation for at least <paramref name="period"/>.</summary>
    void KeepActive(TimeSpan period);
}
