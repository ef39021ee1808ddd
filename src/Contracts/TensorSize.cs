namespace Checkpointing.Contracts;

/// <summary>A tensor a rank holds, by key and byte size, so the grain can split the work by bytes.</summary>
[GenerateSerializer, Immutable]
public sealed record TensorSize([property: Id(0)] string Key, [property: Id(1)] long Bytes);
