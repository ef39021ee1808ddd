using Checkpointing.Abstractions;

namespace Checkpointing.TestSupport;

/// <summary>A real store that counts what its readers read, two ways.</summary>
public sealed class ReadCountingStore(ICheckpointStore inner) : ICheckpointStore
{
    private long _taken;
    private long _served;

    /// <summary>Bytes readers took: what they read from streams, and the ranges they read.</summary>
    public long BytesTaken { get => Interlocked.Read(ref _taken); set => Interlocked.Exchange(ref _taken, value); }

    /// <summary>
    /// Bytes the store handed out, an upper bound on what it downloaded: every stream counted whole when it is opened
    /// (a prefetching stream may fetch more than its reader consumes), and the ranges read.
    /// </summary>
    public long BytesServed => Interlocked.Read(ref _served);

    public string Description => inner.Description;

    public Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(key, writeContent, cancellationToken);

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var stream = await inner.OpenReadAsync(key, cancellationToken);
        Interlocked.Add(ref _served, (await inner.GetEntryAsync(key, cancellationToken))?.Length ?? 0);
        return new ObservedReadStream(stream, () => { }, read => Interlocked.Add(ref _taken, read));
    }

    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        await inner.ReadRangeAsync(key, offset, destination, cancellationToken);
        Interlocked.Add(ref _taken, destination.Length);
        Interlocked.Add(ref _served, destination.Length);
    }

    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);

    public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
}
