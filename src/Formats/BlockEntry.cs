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
        if (filter.Seen != map.RawLength) throw new InvalidOperationException($"a {tensor.DType} tensor wrote {filter.Seen} bytes, expected {map.RawLength}");
    }

    /// <summary>Passes on the bytes of the blocks marked written and drops the others.</summary>
    private sealed class WrittenBlocks(Stream inner, int blockBytes, bool[] written) : WriteOnlyStream
    {
        /// <summary>Bytes of the tensor seen so far, written on or dropped.</summary>
        public long Seen { get; private set; }

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            while (buffer.Length > 0)
            {
                var block = Seen / blockBytes;
                var take = (int)Math.Min(buffer.Length, blockBytes - Seen % blockBytes);
                if (block >= written.Length) throw new InvalidOperationException($"the tensor wrote more than its {written.Length} blocks");
                if (written[block]) inner.Write(buffer[..take]);
                Seen += take;
                buffer = buffer[take..];
            }
        }
    }
}
