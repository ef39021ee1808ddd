using Checkpointing.Formats;

namespace Checkpointing.Core;

/// <summary>How a <see cref="LocalBackend"/> writes into its save folder.</summary>
public sealed record LocalBackendOptions
{
    /// <summary>How old leftovers of killed saves must be before a save deletes them, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultLeftoverMinimumAge = TimeSpan.FromMinutes(10);

    /// <summary>Native folders (default) or fvcore's <c>NAME.pth</c> files.</summary>
    public CheckpointFormat Format { get; init; } = CheckpointFormat.Native;

    /// <summary>
    /// Temporary files and unreferenced shards younger than this are kept even under the folder lock: writers that take
    /// no lock (<c>ckpt convert</c> into the folder, other hosts where locks are host-local) may still be writing them.
    /// </summary>
    public TimeSpan LeftoverMinimumAge { get; init; } = DefaultLeftoverMinimumAge;

    /// <summary>
    /// Native saves reuse the bytes of unchanged tensors from earlier checkpoints in the folder (docs/format.md). Off by
    /// default: an incremental checkpoint folder is not self-contained (copying it alone loses the reused tensors;
    /// <c>ckpt compact</c> makes it whole).
    /// </summary>
    public bool Incremental { get; init; }

    /// <summary>
    /// Native saves store each tensor that gets smaller compressed (docs/compression.md). Off by default: a compressed
    /// checkpoint's shards are not plain safetensors (<c>ckpt compact --decompress</c> makes them so).
    /// </summary>
    public TensorCompression? Compression { get; init; }

    /// <summary>
    /// With <see cref="Incremental"/>: large tensors (embedding tables) write only the blocks of rows that changed since the
    /// latest checkpoint storing them (docs/compression.md#block-reuse). Off by default; needs <see cref="Incremental"/>.
    /// </summary>
    public BlockReuse? BlockReuse { get; init; }
}
