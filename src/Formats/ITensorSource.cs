namespace Checkpointing.Formats;

/// <summary>A tensor whose bytes can be streamed out: the writer never needs the whole checkpoint in memory.</summary>
public interface ITensorSource
{
    /// <summary>The element type of the bytes <see cref="WriteTo"/> writes.</summary>
    TensorDType DType { get; }

    /// <summary>The size of each dimension, outermost first; empty for a scalar.</summary>
    long[] Shape { get; }

    /// <summary>Writes exactly <c>ByteLength(DType, Shape)</c> little-endian bytes, row-major.</summary>
    void WriteTo(Stream destination);
}
