namespace Checkpointing.Contracts;

/// <summary>Where a rank's wait for its checkpoint's commit stands (<see cref="CommitWait.Status"/>).</summary>
[GenerateSerializer]
public enum CommitWaitStatus
{
    /// <summary>Every rank is in and the commit is durable.</summary>
    Committed,
    /// <summary>Still waiting for other ranks: ask again.</summary>
    Waiting,
    /// <summary>The grain does not hold this rank's report (it was reactivated, e.g. after a silo failure): send the same report again.</summary>
    ReportAgain,
}
