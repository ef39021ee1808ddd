namespace Checkpointing.Formats;

/// <summary>
/// Lossless compression of a save's tensors (docs/compression.md): each tensor of at least <see cref="MinBytes"/> (and at
/// most <see cref="BytegroupCodec.MaxTensorBytes"/>) is encoded with <see cref="BytegroupCodec"/> and stored encoded only
/// when that is smaller than its raw bytes.
/// </summary>
public sealed record TensorCompression
{
    /// <summary>The zstd level of every plane: 1 by default; higher levels gain little on float planes and cost much.</summary>
    public int Level { get; init; } = BytegroupCodec.DefaultLevel;

    /// <summary>Smaller tensors are stored as they are: a shard header entry and a frame table cost more than they could save.</summary>
    public long MinBytes { get; init; } = 4096;

    /// <summary>Cores one tensor's frames are encoded on; null: all of them.</summary>
    public int? MaxParallel { get; init; }
}
