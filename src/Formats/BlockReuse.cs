namespace Checkpointing.Formats;

/// <summary>
/// Reuse of unchanged parts of large tensors by incremental saves (docs/compression.md#block-reuse): each selected tensor is
/// hashed in blocks of whole rows, and only the blocks whose hash changed since the run's last checkpoint holding the tensor
/// are written; the others are referenced where an earlier checkpoint stored them. Meant for embedding tables, where a
/// period touches a few rows of a large table. Applies only to incremental saves.
/// </summary>
public sealed record BlockReuse
{
    /// <summary>Smaller tensors are reused whole or written whole, as by any incremental save.</summary>
    public long MinBytes { get; init; } = 16L << 20;

    /// <summary>
    /// The size of a block: as many whole rows (the first dimension) as fit, at least one. Smaller blocks write fewer bytes
    /// when scattered rows change, and cost 8 bytes of hash per block written and about 12 bytes of map per run of blocks.
    /// </summary>
    public int BlockBytes { get; init; } = 512;

    /// <summary>
    /// How many checkpoints' bytes one tensor may reference, its own included. When a save would exceed it, the blocks of
    /// the earlier checkpoints that still serve the fewest blocks are written again, so a load reads a bounded number of
    /// places and old checkpoints stop being held for a handful of rows.
    /// </summary>
    public int MaxSources { get; init; } = 32;

    /// <summary>Refuses settings out of range.</summary>
    /// <exception cref="ArgumentOutOfRangeException">A setting is out of its range.</exception>
    public void Validate()
    {
        if (MinBytes < 1) throw new ArgumentOutOfRangeException(nameof(MinBytes), MinBytes, "BlockReuse.MinBytes must be at least 1");
        if (BlockBytes < BlockMap.MinBlockBytes || BlockBytes > BlockMap.MaxBlockBytes)
            throw new ArgumentOutOfRangeException(nameof(BlockBytes), BlockBytes, $"BlockReuse.BlockBytes must be from {BlockMap.MinBlockBytes} to {BlockMap.MaxBlockBytes}");
        if (MaxSources < 1 || MaxSources > BlockMap.MaxSources)
            throw new ArgumentOutOfRangeException(nameof(MaxSources), MaxSources, $"BlockReuse.MaxSources must be from 1 to {BlockMap.MaxSources}");
    }
}
