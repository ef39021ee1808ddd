namespace Checkpointing.Contracts;

/// <summary>A rank that reported waits (long-polls) for the commit of its attempt.</summary>
[GenerateSerializer, Immutable]
public sealed record CommitWaitRequest(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] int Rank,
    [property: Id(3)] long Epoch,
    [property: Id(4)] TimeSpan MaxWait);
