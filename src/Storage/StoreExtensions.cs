using System.Text;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

/// <summary>Whole-object writes and reads over any <see cref="ICheckpointStore"/>, for small objects such as tags.</summary>
public static class StoreExtensions
{
    /// <summary>Writes <paramref name="bytes"/> as the object <paramref name="key"/>, atomically as every store write.</summary>
    public static Task WriteBytesAsync(this ICheckpointStore store, string key, ReadOnlyMemory<byte> bytes, CancellationToken cancellationToken = default) =>
        store.WriteAsync(key, (s, ct) => s.WriteAsync(bytes, ct).AsTask(), cancellationToken);

    /// <summary>Writes <paramref name="text"/> as UTF-8, without a byte order mark, as the object <paramref name="key"/>, atomically as every store write.</summary>
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
