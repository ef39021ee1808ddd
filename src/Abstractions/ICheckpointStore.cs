namespace Checkpointing.Abstractions;

/// <summary>
/// Byte storage for checkpoints: a local folder or a blob container. Every write is atomic:
/// readers see either the previous object or the complete new one, never a partial write.
/// </summary>
public interface ICheckpointStore
{
    /// <summary>A short description for logs and errors, e.g. "folder /data/run1".</summary>
    string Description { get; }

    /// <summary>
    /// Writes the object <paramref name="key"/> through <paramref name="writeContent"/>, which gets a
    /// write-only stream. The object becomes visible only after the callback returns and the
    /// bytes are durable; if the callback or the store fails, nothing is visible.
    /// </summary>
    Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default);

    /// <summary>Opens the object for sequential reading. Throws <see cref="StoreObjectNotFoundException"/> when it is absent.</summary>
    Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes starting at <paramref name="offset"/>.</summary>
    Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default);

    /// <summary>
    /// Reads several ranges of one object, each exactly filling its destination: a folder store reads them through one
    /// open file, a remote store issues them a few at a time. Used by resharded loads, which read many small ranges.
    /// </summary>
    async Task ReadRangesAsync(string key, IReadOnlyList<(long Offset, Memory<byte> Destination)> ranges, CancellationToken cancellationToken = default)
    {
        await Parallel.ForEachAsync(ranges, new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = cancellationToken },
            (range, token) => new ValueTask(ReadRangeAsync(key, range.Offset, range.Destination, token))).ConfigureAwait(false);
    }

    /// <summary>The size of one ranged read that suits this store (a blob store: its range size): whole loads read in pieces of this many bytes.</summary>
    int PreferredReadBytes => 8 << 20;

    /// <summary>How many ranged reads of <see cref="PreferredReadBytes"/> a whole load keeps in flight: every core, at least 4.</summary>
    int PreferredReadsInFlight => Math.Max(4, Environment.ProcessorCount);

    /// <summary>The object's entry, or null when it does not exist.</summary>
    Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Every object whose key starts with <paramref name="prefix"/> (a folder prefix ending in '/', or "" for all), in ordinal key order.</summary>
    IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default);

    /// <summary>Deletes one object; returns false when it did not exist.</summary>
    Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default);
}
