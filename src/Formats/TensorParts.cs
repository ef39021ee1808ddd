using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// A state leaf holding chunks of one sharded tensor (docs/format.md#sharded-tensors-and-resharding): every chunk of it, for a conversion that writes a
/// whole layout at once, or a rank's own slices.
/// </summary>
public sealed class TensorParts(long[] globalShape, IReadOnlyList<(TensorLayout Layout, ITensorSource Source)> parts)
{
    public long[] GlobalShape { get; } = globalShape;
    public IReadOnlyList<(TensorLayout Layout, ITensorSource Source)> Parts { get; } = parts;
}
