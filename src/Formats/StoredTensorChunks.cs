using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>Where a stored tensor's elements are: one whole chunk for a whole tensor, or the chunks of a sharded one.</summary>
public sealed record StoredTensorChunks(string Key, TensorDType DType, long[] Shape, IReadOnlyList<StoredChunk> Chunks)
{
    /// <exception cref="KeyNotFoundException">no tensor or sharded tensor of that key</exception>
    public static StoredTensorChunks Of(CheckpointManifest manifest, string key)
    {
        if (manifest.Tensors.TryGetValue(key, out var whole))
        {
            TensorDTypes.TryParse(whole.DType, out var dtype);
            return new StoredTensorChunks(key, dtype, whole.Shape, [new StoredChunk(key, TensorLayout.Whole(whole.Shape), whole)]);
        }
        var sharded = manifest.Sharded.TryGetValue(key, out var s) ? s : throw new KeyNotFoundException($"The checkpoint has no tensor '{key}'.");
        TensorDTypes.TryParse(sharded.DType, out var shardedType);
        var chunks = sharded.Chunks.Select(c => new StoredChunk(c.Tensor, c.Layout(sharded.Shape, manifest.Tensors[c.Tensor]), manifest.Tensors[c.Tensor])).ToList();
        return new StoredTensorChunks(key, shardedType, sharded.Shape, chunks);
    }

    /// <summary>Every tensor the state references, whole or sharded, in the state's order.</summary>
    public static IEnumerable<StoredTensorChunks> All(CheckpointManifest manifest) =>
        StateTree.TensorReferences(manifest.State).Distinct(StringComparer.Ordinal).Select(key => Of(manifest, key));
}
