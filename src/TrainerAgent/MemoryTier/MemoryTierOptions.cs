using Checkpointing.Contracts;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// A rank's part in its run's memory tier (docs/memory-tier.md): the holder on its host that keeps its snapshots across a
/// restart of the training process, and the job's tenant token, which authenticates every call to any holder.
/// </summary>
/// <param name="Holder">This host's holder (<c>ckpt holder</c>, or a <see cref="HolderServer"/> the process runs itself).</param>
/// <param name="TenantToken">The job's tenant token, as the holders were started with.</param>
public sealed record MemoryTierOptions(HolderRef Holder, string TenantToken)
{
    /// <summary>
    /// How long a rank's memory checkpoint waits for every other rank's snapshot to be held; one that does not commit by then is
    /// abandoned and freed. The next memory checkpoint waits for this, so it bounds how far training runs ahead of a slow rank.
    /// </summary>
    public TimeSpan CommitWait { get; init; } = TimeSpan.FromSeconds(30);
}
