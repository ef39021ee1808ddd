using Checkpointing.Abstractions;

namespace Checkpointing.Grains;

/// <summary>An <see cref="ICheckpointStoreProvider"/> for one store, given when the silo is built.</summary>
/// <param name="store">The store every run grain of the silo keeps its checkpoints in.</param>
public sealed class CheckpointStoreProvider(ICheckpointStore store) : ICheckpointStoreProvider
{
    /// <inheritdoc/>
    public ICheckpointStore Store { get; } = store;
}
