namespace Checkpointing.Abstractions;

/// <summary>One object in a store.</summary>
public sealed record StoreEntry(string Key, long Length, DateTimeOffset LastModified);
