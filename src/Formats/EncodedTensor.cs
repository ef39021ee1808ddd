namespace Checkpointing.Formats;

/// <summary>A tensor a save stored encoded: its dtype, shape, raw length, the hash of its raw bytes, and the encoding (docs/compression.md).</summary>
public sealed record EncodedTensor(TensorDType DType, long[] Shape, long RawLength, string Hash, string Encoding);
