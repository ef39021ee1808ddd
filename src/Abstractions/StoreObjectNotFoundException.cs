namespace Checkpointing.Abstractions;

/// <summary>Thrown when a store object that must exist does not.</summary>
public sealed class StoreObjectNotFoundException(string key, string store)
    : FileNotFoundException($"'{key}' does not exist in {store}.", key)
{
    /// <summary>The store key of the missing object.</summary>
    public string Key { get; } = key;
}
