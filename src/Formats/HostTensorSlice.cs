using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>The elements of a layout streamed out of a whole tensor in host memory, without copying them first.</summary>
public sealed class HostTensorSlice(HostTensor whole, TensorLayout layout) : ITensorSource
{
    /// <summary>The whole tensor's element type.</summary>
    public TensorDType DType => whole.DType;

    /// <summary>The layout's local shape: the extent of the slice, or [count] for a flat range.</summary>
    public long[] Shape => layout.LocalShape;

    /// <summary>Writes the slice's elements, row-major, straight from the whole tensor's array: one write per run of consecutive elements.</summary>
    public void WriteTo(Stream destination)
    {
        var size = whole.DType.ElementSize();
        foreach (var run in layout.Runs()) destination.Write(whole.Data.AsSpan(checked((int)(run.GlobalStart * size)), checked((int)(run.Length * size))));
    }

    /// <summary>A whole tensor cut into the given layouts, as a state leaf.</summary>
    public static TensorParts Parts(HostTensor whole, IEnumerable<TensorLayout> layouts) =>
        new(whole.Shape, layouts.Select(l => (l, (ITensorSource)new HostTensorSlice(whole, l))).ToList());
}
