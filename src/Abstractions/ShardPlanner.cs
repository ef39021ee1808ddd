namespace Checkpointing.Abstractions;

/// <summary>
/// Splits items into <c>count</c> groups of nearly equal bytes: largest first onto the lightest
/// group (the lowest index among equals), ties between items broken by key, so that every rank
/// and the run grain computing the plan get the same answer. O(n log n + n log count).
/// </summary>
public static class ShardPlanner
{
    /// <summary>The <paramref name="items"/> in <paramref name="count"/> groups, group i for shard (or rank) i; some groups are empty when there are fewer items than groups.</summary>
    /// <param name="items">What to split, in any order.</param>
    /// <param name="count">How many groups, at least 1.</param>
    /// <param name="key">An item's unique key, which breaks ties between items of equal size.</param>
    /// <param name="bytes">An item's size in bytes.</param>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="count"/> is below 1</exception>
    public static IReadOnlyList<List<T>> Split<T>(IReadOnlyList<T> items, int count, Func<T, string> key, Func<T, long> bytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var groups = Enumerable.Range(0, count).Select(_ => new List<T>()).ToArray();
        var lightest = new PriorityQueue<int, (long Load, int Index)>(Enumerable.Range(0, count).Select(i => (i, (0L, i))));
        foreach (var item in items.OrderByDescending(bytes).ThenBy(key, StringComparer.Ordinal))
        {
            lightest.TryDequeue(out var group, out var priority);
            groups[group].Add(item);
            lightest.Enqueue(group, (priority.Load + bytes(item), group));
        }
        return groups;
    }
}
