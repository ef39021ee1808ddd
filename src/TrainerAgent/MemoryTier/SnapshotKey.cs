using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// One rank's memory-tier snapshot of one iteration in one attempt, as holders key it. The attempt is part of the key: a
/// later attempt that trains an iteration again takes a new snapshot of it, and a complete snapshot never changes.
/// </summary>
public sealed record SnapshotKey(RunId Run, int Rank, long Epoch, long Iteration)
{
    /// <summary>The holder's URL path of this snapshot: <c>v1/snapshots/tenant/run/rank/epoch/iteration</c>.</summary>
    public string Path => $"v1/snapshots/{Run.Tenant}/{Run.Run}/{Rank}/{Epoch}/{Iteration}";

    /// <summary>The snapshot named by the parts of a holder's URL path, or null when one is not valid.</summary>
    public static SnapshotKey? Parse(string tenant, string run, int rank, long epoch, long iteration) =>
        CheckpointName.IsValid(tenant) && CheckpointName.IsValid(run) && rank >= 0 && epoch >= 0 && iteration >= 0
            ? new SnapshotKey(new RunId(tenant, run), rank, epoch, iteration)
            : null;
}
