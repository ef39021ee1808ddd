using Checkpointing.Abstractions;

namespace Checkpointing.Core;

/// <summary>One committed checkpoint as listed by a catalog.</summary>
/// <param name="Bytes">Every shard the checkpoint needs, its own and those it reuses from earlier checkpoints.</param>
/// <param name="LogicalBytes">Bytes of tensor data in its state.</param>
/// <param name="WrittenBytes">Bytes its own save wrote (physical): less than <paramref name="LogicalBytes"/> for an incremental checkpoint.</param>
public sealed record CatalogEntry(string Name, long? Iteration, long Bytes, DateTimeOffset CreatedUtc, int Tensors, long LogicalBytes, long WrittenBytes)
{
    public static CatalogEntry Of(string name, CheckpointManifest m) =>
        new(name, m.Iteration, m.TotalBytes, m.CreatedUtc, m.Tensors.Count, m.TensorBytes, m.WrittenBytes);
}
