namespace Checkpointing.Formats;

/// <summary>One tensor of a safetensors file; offsets are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Key, TensorDType DType, long[] Shape, long Begin, long End)
{
    /// <summary>The tensor's size in bytes, <c>End - Begin</c>.</summary>
    public long ByteLength => End - Begin;
}
