using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>One chunk of a stored tensor: the index entry that holds its bytes and where it lies in the whole tensor.</summary>
/// <param name="Key">The index entry holding the chunk's bytes.</param>
/// <param name="Layout">Which elements of the whole tensor the chunk holds (the whole tensor, for a tensor stored whole).</param>
/// <param name="Info">The index entry: the shard, byte offsets and content hash of the chunk's bytes.</param>
public sealed record StoredChunk(string Key, TensorLayout Layout, TensorInfo Info);
