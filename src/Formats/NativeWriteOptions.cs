using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>How <see cref="NativeCheckpointWriter"/> writes a native checkpoint: shard count, parallelism, progress, incremental reuse (of whole tensors and of blocks), sharded layouts and compression.</summary>
public sealed record NativeWriteOptions
{
    /// <summary>How many shards to split the tensors into, balanced by bytes.</summary>
    public int ShardCount { get; init; } = 1;

    /// <summary>
    /// Shards written at once, each on a thread of its own (serialization is CPU work); null: one
    /// per shard, at most <see cref="Environment.ProcessorCount"/>.
    /// </summary>
    public int? MaxParallelShards { get; init; }

    /// <summary>
    /// Bytes of tensor data written, reported as each tensor completes (the bytes of that tensor).
    /// Shards are written in parallel, but reports never overlap: the writer serializes them.
    /// </summary>
    public IProgress<long>? Progress { get; init; }

    /// <summary>
    /// Makes the save incremental (docs/format.md#incremental-checkpoints): every tensor's content hash is recorded, and a tensor
    /// whose hash, dtype and shape equal one stored by one of these earlier committed checkpoints of the
    /// same run is not written again; the manifest references those bytes in the earlier shard. Null: a
    /// self-contained checkpoint without hashes. The caller must keep the referenced shards from being
    /// deleted until the save has returned.
    /// </summary>
    public IReadOnlyList<EarlierCheckpoint>? ReuseFrom { get; init; }

    /// <summary>
    /// Store keys in this checkpoint's folder that other checkpoints still reference: a re-save of the name
    /// keeps them although its own manifest no longer does. Null: nothing outside the manifest is kept.
    /// </summary>
    public Func<string, bool>? ReferencedElsewhere { get; init; }

    /// <summary>
    /// The part of each tensor this process holds, by state path ("model/fc.weight"), for sharded saves (docs/format.md#sharded-tensors-and-resharding);
    /// null or a null answer: the tensor is whole. A save into one checkpoint must hold every chunk of each sharded
    /// tensor (a conversion); ranks holding slices save collectively in cluster mode.
    /// </summary>
    public Func<string, TensorLayout?>? Layouts { get; init; }

    /// <summary>
    /// Stores tensors compressed when that makes them smaller (docs/compression.md); null, the default: every tensor as it
    /// is, and the checkpoint is plain safetensors shards that any reader opens.
    /// </summary>
    public TensorCompression? Compression { get; init; }

    /// <summary>
    /// With <see cref="ReuseFrom"/>: large tensors are stored in blocks of rows, and only the blocks that changed since the
    /// latest earlier checkpoint storing them so are written (docs/compression.md#block-reuse). Null, the default: tensors are
    /// reused or written whole.
    /// </summary>
    public BlockReuse? BlockReuse { get; init; }
}
