using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Checkpointing.Storage;

/// <summary>
/// Sequential reading of a blob through parallel range downloads: up to <c>parallelism</c> ranges of
/// <c>rangeSize</c> bytes are in flight ahead of the reader, so memory stays bounded while the
/// network is kept busy (one range at a time cannot fill the pipe).
/// </summary>
internal sealed class PrefetchingBlobReadStream : Stream
{
    private readonly BlobClient _blob;
    private readonly long _length;
    private readonly int _rangeSize;
    private readonly int _parallelism;
    private readonly CancellationTokenSource _cancel;
    private readonly Queue<Task<byte[]>> _ahead = new();
    private long _nextRangeStart;
    private byte[] _current = [];
    private int _currentOffset;
    private long _position;

    public PrefetchingBlobReadStream(BlobClient blob, long length, int rangeSize, int parallelism, CancellationToken cancellationToken)
    {
        _blob = blob;
        _length = length;
        _rangeSize = rangeSize;
        _parallelism = parallelism;
        _cancel = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        FillAhead();
    }

    private void FillAhead()
    {
        while (_ahead.Count < _parallelism && _nextRangeStart < _length)
        {
            var start = _nextRangeStart;
            var size = (int)Math.Min(_rangeSize, _length - start);
            _nextRangeStart += size;
            _ahead.Enqueue(DownloadAsync(start, size));
        }
    }

    private async Task<byte[]> DownloadAsync(long start, int size)
    {
        var buffer = new byte[size];
        var response = await _blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(start, size) }, _cancel.Token).ConfigureAwait(false);
        await using var content = response.Value.Content;
        var done = 0;
        while (done < size)
        {
            var n = await content.ReadAsync(buffer.AsMemory(done), _cancel.Token).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException($"blob {_blob.Name} ended at {start + done}, expected {_length} bytes");
            done += n;
        }
        return buffer;
    }

    public override int Read(Span<byte> buffer)
    {
        if (_currentOffset == _current.Length)
        {
            if (_ahead.Count == 0) return 0;
            _current = _ahead.Dequeue().GetAwaiter().GetResult();
            _currentOffset = 0;
            FillAhead();
        }
        var n = Math.Min(buffer.Length, _current.Length - _currentOffset);
        _current.AsSpan(_currentOffset, n).CopyTo(buffer);
        _currentOffset += n;
        _position += n;
        return n;
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => _length;
    public override long Position { get => _position; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _cancel.Cancel();
            foreach (var pending in _ahead) pending.ContinueWith(t => _ = t.Exception, TaskScheduler.Default);
            _cancel.Dispose();
        }
        base.Dispose(disposing);
    }
}
