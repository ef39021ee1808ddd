namespace Checkpointing.Abstractions;

/// <summary>
/// Splits items into <c>count</c> groups of nearly equal bytes: largest first onto the lightest
/// group, ties broken by key so that every rank computing the plan gets the same answer.
/// </summary>
public static class ShardPlanner
{
    public static IReadOnlyList<List<T>> Split<T>(IReadOnlyList<T> items, int count, Func<T, string> key, Func<T, long> bytes)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        var groups = Enumerable.Range(0, count).Select(_ => new List<T>()).ToArray();
        var load = new long[count];
        foreach (var item in items.OrderByDescending(bytes).ThenBy(key, StringComparer.Ordinal))
        {
            var lightest = Array.IndexOf(load, load.Min());
            groups[lightest].Add(item);
            load[lightest] += bytes(item);
        }
        return groups;
    }
}
