using Checkpointing.Abstractions;

namespace Checkpointing.TestSupport;

/// <summary>
/// A store that passes every request to another and fails request number <see cref="FailAt"/> (1-based) with an
/// <see cref="IOException"/>, as a disk or the network would fail in the middle of a load. Every call counts as one request,
/// and so does every read from a stream it opened. <see cref="FailAt"/> 0 never fails: it counts the requests of a whole load.
/// </summary>
public sealed class FailNthRequestStore(ICheckpointStore inner, int failAt = 0) : ICheckpointStore
{
    private int _requests;
    private int _failed;

    public int FailAt { get; } = failAt;

    /// <summary>Requests seen so far, the failed one included.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Whether the injected failure has happened.</summary>
    public bool Failed => Volatile.Read(ref _failed) == 1;

    public string Description => inner.Description;

    private void Request(string what, string key)
    {
        if (Interlocked.Increment(ref _requests) != FailAt) return;
        Volatile.Write(ref _failed, 1);
        throw new IOException($"injected failure of request {FailAt} ({what} {key})");
    }

    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        Request("write", key);
        await inner.WriteAsync(key, writeContent, cancellationToken).ConfigureAwait(false);
    }

    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        Request("open", key);
        return new ObservedReadStream(await inner.OpenReadAsync(key, cancellationToken).ConfigureAwait(false), () => Request("stream read", key));
    }

    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        Request("range read", key);
        await inner.ReadRangeAsync(key, offset, destination, cancellationToken).ConfigureAwait(false);
    }

    public async Task ReadRangesAsync(string key, IReadOnlyList<(long Offset, Memory<byte> Destination)> ranges, CancellationToken cancellationToken = default)
    {
        Request("ranges read", key);
        await inner.ReadRangesAsync(key, ranges, cancellationToken).ConfigureAwait(false);
    }

    public async Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default)
    {
        Request("entry", key);
        return await inner.GetEntryAsync(key, cancellationToken).ConfigureAwait(false);
    }

    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        Request("list", prefix);
        await foreach (var entry in inner.ListAsync(prefix, cancellationToken).ConfigureAwait(false)) yield return entry;
    }

    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        Request("delete", key);
        return await inner.DeleteAsync(key, cancellationToken).ConfigureAwait(false);
    }
}
