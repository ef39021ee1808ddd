using Checkpointing.Abstractions;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// A store whose writes, all together, go no faster than a given rate: a blob link's capacity, shared by every shard
/// written at once. Reads and everything else pass through to the inner store.
/// </summary>
public sealed class RateLimitedStore(ICheckpointStore inner, double bytesPerSecond) : ICheckpointStore
{
    private readonly object _link = new();
    private readonly System.Diagnostics.Stopwatch _clock = System.Diagnostics.Stopwatch.StartNew();
    /// <summary>When the link is free again, in seconds of <see cref="_clock"/>.</summary>
    private double _freeAt;

    public string Description => $"{inner.Description} at {bytesPerSecond / 1e6:F0} MB/s";

    public Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default) =>
        inner.WriteAsync(key, (stream, token) => writeContent(new PacedStream(stream, this), token), cancellationToken);

    public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) => inner.OpenReadAsync(key, cancellationToken);

    public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
        inner.ReadRangeAsync(key, offset, destination, cancellationToken);

    public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);

    public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);

    /// <summary>Books <paramref name="bytes"/> on the link and sleeps until they would have crossed it.</summary>
    private void Send(int bytes)
    {
        double until;
        lock (_link)
        {
            var now = _clock.Elapsed.TotalSeconds;
            _freeAt = Math.Max(_freeAt, now) + bytes / bytesPerSecond;
            until = _freeAt;
        }
        var wait = until - _clock.Elapsed.TotalSeconds;
        if (wait > 0) Thread.Sleep(TimeSpan.FromSeconds(wait));
    }

    private sealed class PacedStream(Stream inner, RateLimitedStore link) : Stream
    {
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            link.Send(buffer.Length);
            inner.Write(buffer);
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Flush() => inner.Flush();
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => inner.Length;
        public override long Position { get => inner.Position; set => throw new NotSupportedException(); }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
