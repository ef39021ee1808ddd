namespace Checkpointing.Contracts;

/// <summary>What an operator, a scheduler or the job's owner calls to manage a run.</summary>
[GrainAccess(CallerAccess.Tenant)]
public interface IRunAdministration : IGrainWithStringKey
{
    /// <summary>Creates the run with its policy; repeating the same call is a no-op, a different policy is refused.</summary>
    Task<RunView> Create(PeriodicPolicy policy);

    /// <summary>Changes the periodic policy; a lower max_to_keep evicts at once.</summary>
    Task<RunView> SetPolicy(PeriodicPolicy policy);

    /// <summary>Moves the last-checkpoint tag to a committed checkpoint.</summary>
    Task TagLastCheckpoint(string name);

    /// <summary>Asks every rank to save as soon as possible (e.g. a preemption notice); see <see cref="StepDirective"/>.</summary>
    Task RequestCheckpointNow(string reason);

    /// <summary>Deletes every checkpoint's blobs and the run's state.</summary>
    Task Delete();

    /// <summary>
    /// Operator: after the run's state was lost (a storage restore, someone deleting it), adopts the committed checkpoints
    /// in the store that the catalog does not list, each only once it verifies end to end, and tags the newest when the
    /// tag is gone. A run whose state is gone altogether is created again with <paramref name="policyIfLost"/>.
    /// </summary>
    [GrainAccess(CallerAccess.Operator)]
    Task<CatalogRecoveryReport> RecoverCatalog(PeriodicPolicy policyIfLost);
}
