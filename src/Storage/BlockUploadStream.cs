using System.Buffers;
using System.Security.Cryptography;
using System.Text;
using Azure.Storage;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace Checkpointing.Storage;

/// <summary>
/// A write-only stream that cuts what is written into blocks and stages them concurrently (at most
/// <see cref="AzureBlobStoreOptions.MaxBlocksInFlight"/> at once, so memory stays bounded); the
/// blob appears only at <see cref="CommitAsync"/>. Content that fits in one block is never staged:
/// it goes as one Put Blob request at commit (manifests on the commit path cost one request, not
/// two). A full block is staged only once more bytes follow it, so a write of exactly one block
/// is a single Put too. The first failed block fails the next write.
/// </summary>
internal sealed class BlockUploadStream : Stream
{
    /// <summary>The first buffer's size: small objects (manifests) should not take a whole block from the pool; it grows up to a block.</summary>
    private const int FirstBufferSize = 64 << 10;

    private readonly BlockBlobClient _blob;
    private readonly AzureBlobStoreOptions _options;
    private readonly CancellationToken _cancellation;
    private readonly UploadTransferValidationOptions _validation;
    private readonly SemaphoreSlim _slots;
    private readonly List<string> _blockIds = [];
    private readonly List<Task> _uploads = [];
    private readonly string _uploadId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
    private byte[] _buffer;
    private int _filled;
    private long _length;
    private bool _committed;

    public BlockUploadStream(BlockBlobClient blob, AzureBlobStoreOptions options, CancellationToken cancellation)
    {
        _blob = blob;
        _options = options;
        _cancellation = cancellation;
        _validation = ValidationFor(options.TransferChecksum);
        _slots = new SemaphoreSlim(options.MaxBlocksInFlight, options.MaxBlocksInFlight);
        _buffer = ArrayPool<byte>.Shared.Rent(Math.Min(options.BlockSize, FirstBufferSize));
    }

    /// <summary>Always explicit, so that a transfer validation set on the client's options does not apply instead.</summary>
    private static UploadTransferValidationOptions ValidationFor(TransferChecksum checksum) => new()
    {
        ChecksumAlgorithm = checksum switch
        {
            TransferChecksum.None => StorageChecksumAlgorithm.None,
            TransferChecksum.StorageCrc64 => StorageChecksumAlgorithm.StorageCrc64,
            TransferChecksum.Md5 => StorageChecksumAlgorithm.MD5,
            _ => throw new ArgumentOutOfRangeException(nameof(checksum), checksum, "unknown transfer checksum"),
        },
    };

    /// <summary>How much of <see cref="_buffer"/> a block may fill (the pool may hand out a longer array).</summary>
    private int Capacity => Math.Min(_buffer.Length, _options.BlockSize);

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        while (buffer.Length > 0)
        {
            ThrowIfUploadFailed();
            if (_filled == _options.BlockSize) StageCurrentBlock();
            else if (_filled == Capacity) GrowBuffer();
            var n = Math.Min(buffer.Length, Capacity - _filled);
            buffer[..n].CopyTo(_buffer.AsSpan(_filled));
            _filled += n;
            _length += n;
            buffer = buffer[n..];
        }
    }

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
    {
        Write(buffer.Span);
        return ValueTask.CompletedTask;
    }

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void GrowBuffer()
    {
        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(_options.BlockSize, 2 * _buffer.Length));
        _buffer.AsSpan(0, _filled).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = bigger;
    }

    /// <summary>Hands the full buffer to a background upload, waiting for a free slot first (the memory bound).</summary>
    private void StageCurrentBlock()
    {
        _slots.Wait(_cancellation);
        var block = _buffer;
        var length = _filled;
        var blockId = Convert.ToBase64String(Encoding.ASCII.GetBytes($"{_uploadId}-{_blockIds.Count:D8}"));
        _blockIds.Add(blockId);
        _uploads.Add(Task.Run(async () =>
        {
            try
            {
                using var content = new MemoryStream(block, 0, length, writable: false);
                await _blob.StageBlockAsync(blockId, content, new BlockBlobStageBlockOptions { TransferValidation = _validation }, _cancellation).ConfigureAwait(false);
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(block);
                _slots.Release();
            }
        }, _cancellation));
        _buffer = ArrayPool<byte>.Shared.Rent(_options.BlockSize);
        _filled = 0;
    }

    private void ThrowIfUploadFailed()
    {
        var failed = _uploads.FirstOrDefault(t => t.IsFaulted || t.IsCanceled);
        failed?.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Makes the blob appear atomically: content of at most one block as one Put Blob; otherwise stages
    /// the last block, waits for every block, then commits the block list.
    /// </summary>
    public async Task CommitAsync(BlobHttpHeaders headers)
    {
        if (_blockIds.Count == 0)
        {
            using var content = new MemoryStream(_buffer, 0, _filled, writable: false);
            await _blob.UploadAsync(content, new BlobUploadOptions { HttpHeaders = headers, TransferValidation = _validation }, _cancellation).ConfigureAwait(false);
        }
        else
        {
            StageCurrentBlock(); // never empty: a full block is staged only when more bytes follow it
            await Task.WhenAll(_uploads).ConfigureAwait(false);
            await _blob.CommitBlockListAsync(_blockIds, new CommitBlockListOptions { HttpHeaders = headers }, _cancellation).ConfigureAwait(false);
        }
        _committed = true;
    }

    public override async ValueTask DisposeAsync()
    {
        if (!_committed)
        {
            // Let staged uploads finish (or fail) before returning their buffers; uncommitted blocks expire on the service.
            try { await Task.WhenAll(_uploads).ConfigureAwait(false); }
            catch (Exception) { /* the write already failed; its exception is the one the caller sees */ }
        }
        ArrayPool<byte>.Shared.Return(_buffer);
        _slots.Dispose();
        await base.DisposeAsync().ConfigureAwait(false);
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
