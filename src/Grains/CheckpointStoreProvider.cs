using Checkpointing.Abstractions;

namespace Checkpointing.Grains;

public sealed class CheckpointStoreProvider(ICheckpointStore store) : ICheckpointStoreProvider
{
    public ICheckpointStore Store { get; } = store;
}
