namespace Checkpointing.Contracts;

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
