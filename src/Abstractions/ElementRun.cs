namespace Checkpointing.Abstractions;

/// <summary>Consecutive row-major elements of a tensor: the first one's global index, how many, and the first one's index in the tensor that holds them.</summary>
public readonly record struct ElementRun(long GlobalStart, long Length, long LocalStart);
