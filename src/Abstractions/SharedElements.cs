namespace Checkpointing.Abstractions;

/// <summary>Elements two layouts share: where they start globally, how many, and their first index in each.</summary>
public readonly record struct SharedElements(long GlobalStart, long Length, long SourceStart, long DestinationStart);
