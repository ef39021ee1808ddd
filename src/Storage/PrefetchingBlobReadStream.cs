using System.Buffers;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Checkpointing.Storage;

/// <summary>
/// Sequential reading of a blob through parallel range downloads: up to <c>parallelism</c> ranges of
/// <c>rangeSize</c> bytes are held at once (downloading ahead of the reader, or being read), so memory
/// stays bounded while the network is kept busy (one range at a time cannot fill the pipe). Range
/// buffers come from <see cref="ArrayPool{T}.Shared"/>: multi-megabyte arrays would otherwise be fresh
/// large-object-heap allocations, page faults and gen-2 collections for every range.
/// </summary>
internal sealed class PrefetchingBlobReadStream : Stream
{
    /// <summary>A range download and the pooled buffer it fills; the buffer may be returned only once <see cref="Download"/> has completed.</summary>
    private sealed record Range(Task Download, byte[] Buffer, int Length);

    private readonly BlobClient _blob;
    private readonly long _length;
    private readonly int _rangeSize;
    private readonly int _parallelism;
    private readonly CancellationTokenSource _cancel;
    /// <summary>Taken once: downloads still running after Dispose must not touch the disposed source.</summary>
    private readonly CancellationToken _downloadToken;
    private readonly Queue<Range> _ahead = new();
    private long _nextRangeStart;
    private Range? _current;
    private int _currentOffset;
    private long _position;
    private bool _disposed;

    public PrefetchingBlobReadStream(BlobClient blob, long length, int rangeSize, int parallelism, CancellationToken cancellationToken)
    {
        _blob = blob;
        _length = length;
        _rangeSize = rangeSize;
        _parallelism = parallelism;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        _downloadToken = _cancel.Token;
        FillAhead();
    }

    private int Unread => _current is null ? 0 : _current.Length - _currentOffset;

    private void FillAhead()
    {
        while (_ahead.Count + (_current is null ? 0 : 1) < _parallelism && _nextRangeStart < _length)
        {
            var start = _nextRangeStart;
            var size = (int)Math.Min(_rangeSize, _length - start);
            _nextRangeStart += size;
            var buffer = ArrayPool<byte>.Shared.Rent(size);
            _ahead.Enqueue(new Range(DownloadAsync(start, buffer.AsMemory(0, size)), buffer, size));
        }
    }

    private async Task DownloadAsync(long start, Memory<byte> destination)
    {
        var response = await _blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(start, destination.Length) }, _downloadToken).ConfigureAwait(false);
        await using var content = response.Value.Content;
        var done = 0;
        while (done < destination.Length)
        {
            var n = await content.ReadAsync(destination[done..], _downloadToken).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException($"blob {_blob.Name} ended at {start + done}, expected {_length} bytes");
            done += n;
        }
    }

    /// <summary>Releases the range just read (its download is complete) so that one more can start.</summary>
    private void ReleaseCurrent()
    {
        if (_current is null) return;
        ArrayPool<byte>.Shared.Return(_current.Buffer);
        _current = null;
        FillAhead();
    }

    /// <summary>Makes the next range current once its download completed; false at the end of the blob.</summary>
    private async ValueTask<bool> NextRangeAsync(bool useAsync, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ReleaseCurrent();
        if (!_ahead.TryPeek(out var next)) return false;
        // Stays queued until complete, so that a failed or cancelled wait leaves its buffer to Dispose.
        if (useAsync) await next.Download.WaitAsync(cancellationToken).ConfigureAwait(false);
        else next.Download.GetAwaiter().GetResult();
        _current = _ahead.Dequeue();
        _currentOffset = 0;
        return true;
    }

    private int CopyCurrent(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, Unread);
        _current?.Buffer.AsSpan(_currentOffset, n).CopyTo(destination);
        _currentOffset += n;
        _position += n;
        return n;
    }

    public override int Read(Span<byte> buffer)
    {
        if (buffer.Length == 0) return 0;
        if (Unread == 0 && !NextRangeAsync(useAsync: false, CancellationToken.None).GetAwaiter().GetResult()) return 0;
        return CopyCurrent(buffer);
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.Length == 0 || Unread > 0) return ValueTask.FromResult(CopyCurrent(buffer.Span));
        return ReadNextRangeAsync(buffer, cancellationToken);
    }

    private async ValueTask<int> ReadNextRangeAsync(Memory<byte> buffer, CancellationToken cancellationToken) =>
        await NextRangeAsync(useAsync: true, cancellationToken).ConfigureAwait(false) ? CopyCurrent(buffer.Span) : 0;

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Writes each range straight from its buffer (no copy through an intermediate buffer).</summary>
    public override async Task CopyToAsync(Stream destination, int bufferSize, CancellationToken cancellationToken)
    {
        while (Unread > 0 || await NextRangeAsync(useAsync: true, cancellationToken).ConfigureAwait(false))
        {
            var unread = Unread;
            await destination.WriteAsync(_current!.Buffer.AsMemory(_currentOffset, unread), cancellationToken).ConfigureAwait(false);
            _currentOffset += unread;
            _position += unread;
        }
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    /// <summary>Cancels the downloads still in flight and hands their buffers back once each has stopped writing into it.</summary>
    protected override void Dispose(bool disposing)
    {
        if (disposing && !_disposed)
        {
            _disposed = true;
            _cancel.Cancel();
            if (_current is not null) ArrayPool<byte>.Shared.Return(_current.Buffer);
            _current = null;
            while (_ahead.TryDequeue(out var range))
            {
                range.Download.ContinueWith(t =>
                {
                    _ = t.Exception; // observed: the reader stopped, a failure of a range it no longer wants is not an error
                    ArrayPool<byte>.Shared.Return(range.Buffer);
                }, CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
            }
            _cancel.Dispose();
        }
        base.Dispose(disposing);
    }

    /// <summary>As <see cref="Dispose(bool)"/>, but returns only once every download has stopped.</summary>
    public override async ValueTask DisposeAsync()
    {
        var pending = _disposed ? [] : _ahead.Select(r => r.Download).ToArray();
        Dispose(true);
        try { await Task.WhenAll(pending).ConfigureAwait(false); }
        catch (Exception) { /* cancelled or failed ranges the reader no longer wants */ }
        GC.SuppressFinalize(this);
    }
}
