using System.Runtime.CompilerServices;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

/// <summary>
/// A volatile store in this process's memory, for tests and control-plane experiments. A write is
/// buffered privately and published under the lock only after its callback returned, so readers see
/// the previous object or the complete new one. Published bytes are never mutated, so reads run
/// outside the lock. Keys are kept in ordinal order, so a prefix listing is a binary search and a walk.
/// </summary>
public sealed class MemoryStore : ICheckpointStore
{
    private readonly Lock _gate = new();
    private readonly SortedList<string, StoredObject> _objects = new(StringComparer.Ordinal);

    /// <summary>"in-process memory store", for logs and errors.</summary>
    public string Description => "in-process memory store";

    /// <inheritdoc/>
    /// <remarks>The callback's stream is write-only and cannot seek, as a blob upload's, so code tested here does not come to rely on either.</remarks>
    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        StoreKey.Validate(key);
        byte[] bytes;
        await using (var buffer = new WriteOnlyBuffer())
        {
            await writeContent(buffer, cancellationToken).ConfigureAwait(false);
            cancellationToken.ThrowIfCancellationRequested();
            bytes = buffer.ToArray();
        }
        lock (_gate) _objects[key] = new StoredObject(bytes, DateTimeOffset.UtcNow);
    }

    /// <summary>
    /// Publishes <paramref name="bytes"/> as object <paramref name="key"/> without copying them (a transfer that already holds
    /// the whole object); the caller must not change them afterwards.
    /// </summary>
    public void Adopt(string key, byte[] bytes)
    {
        StoreKey.Validate(key);
        lock (_gate) _objects[key] = new StoredObject(bytes, DateTimeOffset.UtcNow);
    }

    /// <summary>The bytes of object <paramref name="key"/>, without a copy; <see cref="StoreObjectNotFoundException"/> when absent.</summary>
    public ReadOnlyMemory<byte> Bytes(string key) => Get(key).Bytes;

    /// <inheritdoc/>
    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult<Stream>(new MemoryStream(Get(key).Bytes, writable: false));

    /// <inheritdoc/>
    /// <remarks>Throws <see cref="StoreObjectNotFoundException"/> when the object is absent and <see cref="EndOfStreamException"/> when it ends before the range does.</remarks>
    public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        var bytes = Get(key).Bytes;
        if (destination.Length == 0) return Task.CompletedTask;
        if (offset > bytes.Length - destination.Length)
            throw new EndOfStreamException($"'{key}' in {Description} ends before offset {offset + destination.Length}.");
        bytes.AsMemory((int)offset, destination.Length).CopyTo(destination);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    /// <remarks>The entry's time is when the object was published, in UTC.</remarks>
    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) =>
        Task.FromResult(Find(key) is { } found ? new StoreEntry(key, found.Bytes.Length, found.LastModified) : null);

    /// <inheritdoc/>
    /// <remarks>A snapshot taken when the enumeration starts: writes and deletions meanwhile do not change it.</remarks>
    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        foreach (var entry in Snapshot(prefix))
        {
            cancellationToken.ThrowIfCancellationRequested();
            yield return entry;
        }
        await Task.CompletedTask.ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        StoreKey.Validate(key);
        lock (_gate) return Task.FromResult(_objects.Remove(key));
    }

    private StoredObject? Find(string key)
    {
        StoreKey.Validate(key);
        lock (_gate) return _objects.GetValueOrDefault(key);
    }

    private StoredObject Get(string key) => Find(key) ?? throw new StoreObjectNotFoundException(key, Description);

    /// <summary>The entries under <paramref name="prefix"/> as of now, in ordinal order.</summary>
    private List<StoreEntry> Snapshot(string prefix)
    {
        var entries = new List<StoreEntry>();
        lock (_gate)
        {
            var keys = _objects.Keys;
            for (var i = FirstAtOrAfter(keys, prefix); i < keys.Count && keys[i].StartsWith(prefix, StringComparison.Ordinal); i++)
            {
                var found = _objects.Values[i];
                entries.Add(new StoreEntry(keys[i], found.Bytes.Length, found.LastModified));
            }
        }
        return entries;
    }

    /// <summary>The index of the first key not ordinally less than <paramref name="value"/>: keys with that prefix start there.</summary>
    private static int FirstAtOrAfter(IList<string> keys, string value)
    {
        var (low, high) = (0, keys.Count);
        while (low < high)
        {
            var middle = (low + high) >>> 1;
            if (string.CompareOrdinal(keys[middle], value) < 0) low = middle + 1;
            else high = middle;
        }
        return low;
    }

    private sealed record StoredObject(byte[] Bytes, DateTimeOffset LastModified);

    /// <summary>
    /// The stream a write callback gets: write-only and not seekable, like a blob upload, so that code
    /// tested against this store does not come to rely on reading back or seeking what it wrote.
    /// </summary>
    private sealed class WriteOnlyBuffer : Stream
    {
        // Chunks rather than one growing array: a large object costs its size once more while it is published, never a
        // doubling array's three times.
        private const int ChunkBytes = 4 << 20;
        private readonly List<byte[]> _chunks = [];
        private int _filled = ChunkBytes;
        private long _length;

        public byte[] ToArray()
        {
            var bytes = GC.AllocateUninitializedArray<byte>(checked((int)_length));
            var at = 0;
            foreach (var chunk in _chunks)
            {
                var count = (int)Math.Min(chunk.Length, _length - at);
                chunk.AsSpan(0, count).CopyTo(bytes.AsSpan(at));
                at += count;
            }
            return bytes;
        }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (buffer.Length > 0)
            {
                if (_filled == ChunkBytes)
                {
                    _chunks.Add(GC.AllocateUninitializedArray<byte>(ChunkBytes));
                    _filled = 0;
                }
                var count = Math.Min(buffer.Length, ChunkBytes - _filled);
                buffer[..count].CopyTo(_chunks[^1].AsSpan(_filled));
                (_filled, _length) = (_filled + count, _length + count);
                buffer = buffer[count..];
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            cancellationToken.ThrowIfCancellationRequested();
            Write(buffer.Span);
            return ValueTask.CompletedTask;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        protected override void Dispose(bool disposing)
        {
            if (disposing) _chunks.Clear();
            base.Dispose(disposing);
        }

        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => _length;
        public override long Position { get => _length; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
