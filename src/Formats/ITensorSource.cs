namespace Checkpointing.Formats;

/// <summary>A tensor whose bytes can be streamed out: the writer never needs the whole checkpoint in memory.</summary>
public interface ITensorSource
{
    TensorDType DType { get; }
    long[] Shape { get; }

    /// <summary>Writes exactly <c>ByteLength(DType, Shape)</c> little-endian bytes, row-major.</summary>
    void WriteTo(Stream destination);
}
