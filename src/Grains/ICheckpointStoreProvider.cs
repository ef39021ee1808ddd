using Checkpointing.Abstractions;

namespace Checkpointing.Grains;

/// <summary>The blob store the cluster keeps checkpoints in (Azure Blob, or a folder in dev mode); run prefixes are per tenant and run.</summary>
public interface ICheckpointStoreProvider
{
    /// <summary>The store itself: run grains write manifests, check shard sizes and delete files through it; ranks write their shards into it directly.</summary>
    ICheckpointStore Store { get; }
}
