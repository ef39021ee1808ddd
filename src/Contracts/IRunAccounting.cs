namespace Checkpointing.Contracts;

/// <summary>The run side of the accounting: called by the run's tenant grain only.</summary>
[GrainAccess(CallerAccess.Internal)]
public interface IRunAccounting : IGrainWithStringKey
{
    /// <summary>Drops the run's grant (new tenant limits): its next commit asks the tenant again.</summary>
    Task RevokeGrant();
}
