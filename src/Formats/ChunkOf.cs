using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>Marks a tensor written as a chunk: the sharded tensor's key (what the state references) and where the chunk lies in it.</summary>
public sealed record ChunkOf(string TensorKey, TensorLayout Layout);
