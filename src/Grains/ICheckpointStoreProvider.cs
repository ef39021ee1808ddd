using Checkpointing.Abstractions;

namespace Checkpointing.Grains;

/// <summary>The blob store the cluster keeps checkpoints in (Azure Blob, or a folder in dev mode); run prefixes are per tenant and run.</summary>
public interface ICheckpointStoreProvider
{
    ICheckpointStore Store { get; }
}
