namespace Checkpointing.Core;

/// <summary>
/// What a local backend must not delete beyond what committed manifests reference: the shards an
/// incremental save in flight may reuse (pinned from when it reads the manifests until it returns),
/// and the checkpoints it deleted whose shards are still waiting for their last reference to go.
/// Thread-safe: an async save runs beside the training loop's retention.
/// </summary>
internal sealed class ShardReferences
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, int> _pins = new(StringComparer.Ordinal);
    private readonly SortedSet<string> _evicted = new(StringComparer.Ordinal);

    /// <returns>The keys pinned, to pass to <see cref="Unpin"/>.</returns>
    public string[] Pin(IEnumerable<string> keys)
    {
        var pinned = keys.ToArray();
        lock (_lock)
        {
            foreach (var key in pinned) _pins[key] = _pins.GetValueOrDefault(key) + 1;
        }
        return pinned;
    }

    public void Unpin(string[] pinned)
    {
        lock (_lock)
        {
            foreach (var key in pinned)
            {
                if (--_pins[key] == 0) _pins.Remove(key);
            }
        }
    }

    public bool IsPinned(string key)
    {
        lock (_lock) return _pins.ContainsKey(key);
    }

    /// <summary>Pinned by a save other than the one that pinned <paramref name="mine"/>.</summary>
    public bool IsPinnedByOthers(string key, string[] mine)
    {
        lock (_lock) return _pins.GetValueOrDefault(key) > (mine.Contains(key) ? 1 : 0);
    }

    public void MarkEvicted(string name)
    {
        lock (_lock) _evicted.Add(name);
    }

    public IReadOnlyList<string> Evicted()
    {
        lock (_lock) return _evicted.ToList();
    }

    public void Collected(string name)
    {
        lock (_lock) _evicted.Remove(name);
    }
}
