using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <param name="Key">The index entry holding the chunk's bytes.</param>
public sealed record StoredChunk(string Key, TensorLayout Layout, TensorInfo Info);
