using System.IO.Hashing;

namespace Checkpointing.Formats;

/// <summary>
/// The 64-bit XxHash3 of every block of a tensor (docs/compression.md#block-reuse), taken from the bytes it writes. A block
/// hash only says whether a block changed since a checkpoint of the same run and catches damaged blocks on reads; the
/// tensor's XxHash128 in the manifest still covers the whole.
/// </summary>
internal sealed class BlockHasher : WriteOnlyStream
{
    private readonly ulong[] _hashes;
    private readonly byte[] _partial;
    private int _partialLength;
    private int _next;
    private long _written;

    private BlockHasher(int blockCount, int blockBytes)
    {
        _hashes = new ulong[blockCount];
        _partial = new byte[blockBytes];
    }

    /// <summary>The hash of one block's bytes.</summary>
    public static ulong Of(ReadOnlySpan<byte> block) => XxHash3.HashToUInt64(block);

    /// <summary>The hashes of <paramref name="tensor"/>'s blocks of <paramref name="blockBytes"/> (the last one shorter), in block order.</summary>
    /// <exception cref="InvalidOperationException">the tensor wrote another number of bytes than <paramref name="rawLength"/></exception>
    public static ulong[] Of(ITensorSource tensor, long rawLength, int blockBytes)
    {
        var blockCount = BlockMap.BlockCountOf(rawLength, blockBytes);
        if (tensor is HostTensor host)
        {
            // Held in managed memory: hashed on every core.
            var hashes = new ulong[blockCount];
            Parallel.For(0, (blockCount + 4095) / 4096, part =>
            {
                for (var block = part * 4096; block < Math.Min(blockCount, (part + 1) * 4096); block++)
                {
                    var start = (long)block * blockBytes;
                    hashes[block] = Of(host.Data.AsSpan((int)start, (int)Math.Min(blockBytes, rawLength - start)));
                }
            });
            return hashes;
        }
        using var hasher = new BlockHasher(blockCount, blockBytes);
        tensor.WriteTo(hasher);
        if (hasher._partialLength > 0) hasher.Add(hasher._partial.AsSpan(0, hasher._partialLength));
        if (hasher._written != rawLength) throw new InvalidOperationException($"a {tensor.DType} tensor wrote {hasher._written} bytes, expected {rawLength}");
        return hasher._hashes;
    }

    private void Add(ReadOnlySpan<byte> block)
    {
        if (_next == _hashes.Length) throw new InvalidOperationException($"the tensor wrote more than its {_hashes.Length} blocks");
        _hashes[_next++] = Of(block);
    }

    /// <inheritdoc/>
    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _written += buffer.Length;
        if (_partialLength > 0)
        {
            var take = Math.Min(buffer.Length, _partial.Length - _partialLength);
            buffer[..take].CopyTo(_partial.AsSpan(_partialLength));
            _partialLength += take;
            buffer = buffer[take..];
            if (_partialLength < _partial.Length) return;
            Add(_partial);
            _partialLength = 0;
        }
        for (; buffer.Length >= _partial.Length; buffer = buffer[_partial.Length..]) Add(buffer[.._partial.Length]);
        buffer.CopyTo(_partial);
        _partialLength = buffer.Length;
    }
}
