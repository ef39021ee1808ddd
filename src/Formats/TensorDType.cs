namespace Checkpointing.Formats;

/// <summary>The element types the native format stores, named as safetensors names them.</summary>
public enum TensorDType
{
    /// <summary>64-bit IEEE 754 floating point (<c>torch.float64</c>), 8 bytes.</summary>
    F64,
    /// <summary>32-bit IEEE 754 floating point (<c>torch.float32</c>), 4 bytes.</summary>
    F32,
    /// <summary>16-bit IEEE 754 half precision (<c>torch.float16</c>), 2 bytes.</summary>
    F16,
    /// <summary>16-bit bfloat16: the exponent range of F32 with a 7-bit mantissa (<c>torch.bfloat16</c>), 2 bytes.</summary>
    BF16,
    /// <summary>Signed 64-bit integer (<c>torch.int64</c>), 8 bytes.</summary>
    I64,
    /// <summary>Signed 32-bit integer (<c>torch.int32</c>), 4 bytes.</summary>
    I32,
    /// <summary>Signed 16-bit integer (<c>torch.int16</c>), 2 bytes.</summary>
    I16,
    /// <summary>Signed 8-bit integer (<c>torch.int8</c>), 1 byte.</summary>
    I8,
    /// <summary>Unsigned 8-bit integer (<c>torch.uint8</c>), 1 byte.</summary>
    U8,
    /// <summary>Boolean, one byte per element (<c>torch.bool</c>).</summary>
    BOOL,
    /// <summary>Unsigned 16-bit integer, 2 bytes. TorchSharp has no such type: readable as bytes only (inspect, convert).</summary>
    U16,
    /// <summary>Unsigned 32-bit integer, 4 bytes. TorchSharp has no such type: readable as bytes only (inspect, convert).</summary>
    U32,
    /// <summary>Unsigned 64-bit integer, 8 bytes. TorchSharp has no such type: readable as bytes only (inspect, convert).</summary>
    U64,
    /// <summary>8-bit float with 4 exponent and 3 mantissa bits, 1 byte. TorchSharp has no such type: readable as bytes only (inspect, convert).</summary>
    F8_E4M3,
    /// <summary>8-bit float with 5 exponent and 2 mantissa bits, 1 byte. TorchSharp has no such type: readable as bytes only (inspect, convert).</summary>
    F8_E5M2,
}
