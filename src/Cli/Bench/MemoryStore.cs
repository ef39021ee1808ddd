using System.Collections.Concurrent;
using System.Runtime.CompilerServices;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

// STAND-IN until the storage branch's public Checkpointing.Storage.MemoryStore is merged: delete this file then.
/// <summary>Objects in this process's memory, for <c>ckpt bench commits --store memory</c>.</summary>
internal sealed class MemoryStore : ICheckpointStore
{
    private readonly ConcurrentDictionary<string, (byte[] Data, DateTimeOffset Written)> _objects = new(StringComparer.Ordinal);

    public string Description => "memory";

    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        using var buffer = new MemoryStream();
        await writeContent(buffer, cancellationToken).ConfigureAwait(false);
        _objects[key] = (buffer.ToArray(), DateTimeOffset.UtcNow);
    }

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult<Stream>(new MemoryStream(Get(key), writable: false));

    public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        Get(key).AsMemory(checked((int)offset), destination.Length).CopyTo(destination);
        return Task.CompletedTask;
    }

    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(_objects.TryGetValue(key, out var o) ? new StoreEntry(key, o.Data.Length, o.Written) : null);

    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await Task.CompletedTask.ConfigureAwait(false);
        foreach (var (key, o) in _objects.Where(e => e.Key.StartsWith(prefix, StringComparison.Ordinal)).OrderBy(e => e.Key, StringComparer.Ordinal))
            yield return new StoreEntry(key, o.Data.Length, o.Written);
    }

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => Task.FromResult(_objects.TryRemove(key, out _));

    private byte[] Get(string key) => _objects.TryGetValue(key, out var o) ? o.Data : throw new StoreObjectNotFoundException(key, Description);
}
