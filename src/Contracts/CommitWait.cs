namespace Checkpointing.Contracts;

/// <summary>The answer to <see cref="ICheckpointProtocol.AwaitCommit"/>: committed, still waiting, or report again.</summary>
/// <param name="Status">What the waiting rank does next: return, ask again, or send its report again.</param>
/// <param name="Record">The committed checkpoint when <see cref="Status"/> is <see cref="CommitWaitStatus.Committed"/>; null otherwise.</param>
/// <param name="RanksMissing">How many ranks' reports the grain still lacks: 0 when committed; with
/// <see cref="CommitWaitStatus.ReportAgain"/>, as many as the grain is missing (the whole world size when it holds no report at all).</param>
[GenerateSerializer, Immutable]
public sealed record CommitWait(
    [property: Id(0)] CommitWaitStatus Status,
    [property: Id(1)] CheckpointRecord? Record,
    [property: Id(2)] int RanksMissing);
