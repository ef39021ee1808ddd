namespace Checkpointing.Formats;

/// <summary>A tensor a compressed save encoded: its dtype, shape, raw length and the hash of its raw bytes.</summary>
public sealed record EncodedTensor(TensorDType DType, long[] Shape, long RawLength, string Hash);
