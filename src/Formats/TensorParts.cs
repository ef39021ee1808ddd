using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// A state leaf holding chunks of one sharded tensor (docs/format.md#sharded-tensors-and-resharding): every chunk of it, for a conversion that writes a
/// whole layout at once, or a rank's own slices.
/// </summary>
public sealed class TensorParts(long[] globalShape, IReadOnlyList<(TensorLayout Layout, ITensorSource Source)> parts)
{
    /// <summary>The shape of the whole tensor, of which each part holds the slice its layout describes.</summary>
    public long[] GlobalShape { get; } = globalShape;

    /// <summary>The chunks held here, each with its layout (where it lies in the whole tensor) and the source of its bytes.</summary>
    public IReadOnlyList<(TensorLayout Layout, ITensorSource Source)> Parts { get; } = parts;
}
