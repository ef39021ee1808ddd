using System.Text;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

public static class StoreExtensions
{
    public static Task WriteBytesAsync(this ICheckpointStore store, string key, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default) =>
        store.WriteAsync(key, (s, ct) => s.WriteAsync(bytes, ct).AsTask(), cancellationToken);

    public static Task WriteTextAsync(this ICheckpointStore store, string key, string text, CancellationToken cancellationToken = default) =>
        store.WriteBytesAsync(key, Encoding.UTF8.GetBytes(text), cancellationToken);

    /// <summary>The whole object as text, or null when it does not exist.</summary>
    public static async Task<string?> ReadTextAsync(this ICheckpointStore store, string key, CancellationToken cancellationToken = default)
    {
        var entry = await store.GetEntryAsync(key, cancellationToken).ConfigureAwait(false);
        if (entry is null) return null;
        var bytes = new byte[entry.Length];
        await store.ReadRangeAsync(key, 0, bytes, cancellationToken).ConfigureAwait(false);
        return Encoding.UTF8.GetString(bytes);
    }

    /// <summary>Deletes every object under <paramref name="folderKey"/>/; returns how many.</summary>
    public static async Task<int> DeleteFolderAsync(this ICheckpointStore store, string folderKey, CancellationToken cancellationToken = default)
    {
        var keys = new List<string>();
        await foreach (var entry in store.ListAsync(StoreKey.Validate(folderKey) + "/", cancellationToken).ConfigureAwait(false)) keys.Add(entry.Key);
        // Delete the manifest first so that a crash midway never leaves a manifest without its shards.
        foreach (var key in keys.OrderBy(k => k.EndsWith("/manifest.json", StringComparison.Ordinal) ? 0 : 1))
        {
            await store.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
        }
        return keys.Count;
    }
}
