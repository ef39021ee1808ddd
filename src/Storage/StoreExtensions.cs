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
}
