namespace Checkpointing.Abstractions;

/// <summary>Helpers for building a manifest's shard list.</summary>
public static class ShardLists
{
    /// <summary>
    /// The index of <paramref name="shard"/> in a shard list being built, added at the end the first time: a reused
    /// shard is listed once however many tensors reference it.
    /// </summary>
    public static int IndexOrAdd(this List<ShardInfo> shards, ShardInfo shard)
    {
        var index = shards.IndexOf(shard);
        if (index >= 0) return index;
        shards.Add(shard);
        return shards.Count - 1;
    }
}
