using System.Buffers.Binary;

namespace Checkpointing.Formats;

/// <summary>
/// The shard entry of a block-mapped tensor (docs/compression.md#block-reuse), written as U8 bytes: its map, the hashes of the
/// blocks it stores (little-endian), then those blocks, streamed from the tensor without a copy of the rest.
/// </summary>
internal sealed class BlockEntry(ITensorSource tensor, BlockMap map, byte[] mapBytes, ulong[] ownHashes, bool[] written) : ITensorSource
{
    /// <inheritdoc/>
    public TensorDType DType => TensorDType.U8;

    /// <inheritdoc/>
    public long[] Shape { get; } = [map.EntryLength];

    /// <summary>The map the entry starts with.</summary>
    public BlockMap Map => map;

    /// <inheritdoc/>
    public void WriteTo(Stream destination)
    {
        destination.Write(mapBytes);
        var hashes = new byte[ownHashes.Length * BlockMap.HashBytes];
        for (var slot = 0; slot < ownHashes.Length; slot++) BinaryPrimitives.WriteUInt64LittleEndian(hashes.AsSpan(slot * BlockMap.HashBytes), ownHashes[slot]);
        destination.Write(hashes);
        var filter = new WrittenBlocks(destination, map.BlockBytes, written);
        tensor.WriteTo(filter);
        if (filter.Position != map.RawLength) throw new InvalidOperationException($"a {tensor.DType} tensor wrote {filter.Position} bytes, expected {map.RawLength}");
    }

    /// <summary>Passes on the bytes of the blocks marked written and drops the others.</summary>
    private sealed class WrittenBlocks(Stream inner, int blockBytes, bool[] written) : Stream
    {
        private long _position;

        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (buffer.Length > 0)
            {
                var block = _position / blockBytes;
                var take = (int)Math.Min(buffer.Length, blockBytes - _position % blockBytes);
                if (block >= written.Length) throw new InvalidOperationException($"the tensor wrote more than its {written.Length} blocks");
                if (written[block]) inner.Write(buffer[..take]);
                _position += take;
                buffer = buffer[take..];
            }
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
