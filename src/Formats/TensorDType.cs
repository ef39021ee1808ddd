namespace Checkpointing.Formats;

/// <summary>The element types the native format stores, named as safetensors names them.</summary>
public enum TensorDType
{
    F64,
    F32,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    BOOL,
    U16,
    U32,
    U64,
    F8_E4M3,
    F8_E5M2,
}
