using Checkpointing.Abstractions;

namespace Checkpointing.Core;

/// <summary>One committed checkpoint as listed by a catalog.</summary>
/// <param name="Name">The checkpoint's name: the name of its folder.</param>
/// <param name="Iteration">The training iteration its manifest records; null when none was saved with it.</param>
/// <param name="Bytes">Every shard the checkpoint needs, its own and those it reuses from earlier checkpoints.</param>
/// <param name="CreatedUtc">When its manifest was built, in UTC.</param>
/// <param name="Tensors">Entries of its tensor index; each chunk of a sharded tensor counts as one.</param>
/// <param name="LogicalBytes">Bytes of tensor data in its state.</param>
/// <param name="WrittenBytes">Bytes its own save wrote (physical): less than <paramref name="LogicalBytes"/> for an incremental checkpoint.</param>
public sealed record CatalogEntry(string Name, long? Iteration, long Bytes, DateTimeOffset CreatedUtc, int Tensors, long LogicalBytes, long WrittenBytes)
{
    /// <summary>The entry of checkpoint <paramref name="name"/>, from the facts its manifest <paramref name="m"/> records.</summary>
    public static CatalogEntry Of(string name, CheckpointManifest m) =>
        new(name, m.Iteration, m.TotalBytes, m.CreatedUtc, m.Tensors.Count, m.TensorBytes, m.WrittenBytes);
}
