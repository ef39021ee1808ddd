using System.Text.Json;
using System.Text.Unicode;

namespace Checkpointing.Formats;

/// <summary>One tensor of a safetensors file; offsets are relative to the data section.</summary>
public sealed record SafetensorsEntry(string Key, TensorDType DType, long[] Shape, long Begin, long End)
{
    public long ByteLength => End - Begin;
}
