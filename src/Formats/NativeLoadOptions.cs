using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>How <see cref="NativeCheckpointReader"/> loads a native checkpoint: parallelism, progress, statistics and the layouts to load into.</summary>
public sealed record NativeLoadOptions
{
    /// <summary>Bytes of tensor data read so far (one report at a time, though shards are read in parallel).</summary>
    public IProgress<long>? Progress { get; init; }

    /// <summary>Shards read at once.</summary>
    public int MaxParallelShards { get; init; } = Environment.ProcessorCount;

    /// <summary>Ranged reads in flight at once, per shard; null: what the store prefers (<see cref="ICheckpointStore.PreferredReadsInFlight"/>).</summary>
    public int? MaxParallelReads { get; init; }

    /// <summary>
    /// The part of each tensor to load, by state path and the tensor's stored global shape, for a load into another layout
    /// (docs/format.md#sharded-tensors-and-resharding); a null answer loads the whole tensor. When set, only the byte ranges the layouts need are read (plus
    /// shard headers), each chunk read whole is checked against its content hash:
    /// run <c>ckpt verify</c> for a full check.
    /// </summary>
    public Func<string, long[], TensorLayout?>? Layouts { get; init; }

    /// <summary>Receives the bytes a load needed and read (shard headers not counted).</summary>
    public LoadStatistics? Statistics { get; init; }
}
