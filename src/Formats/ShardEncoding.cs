using System.Buffers;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Encoded tensors inside a shard (docs/compression.md). The shard stays a safetensors container, but an encoded tensor is
/// an entry of U8 bytes under its key plus <c>#</c> and the encoding (<see cref="StoredKey"/>), and the shard's metadata says that its <c>format</c> is
/// not <c>pt</c>: a reader that does not know the encoding sees blobs named as such, never a tensor with wrong values.
/// The manifest indexes the tensor under its own key, dtype and shape, with the encoding, the raw length and the hash of
/// the decoded bytes.
/// </summary>
public static class ShardEncoding
{
    /// <summary>The <c>format</c> metadata of a shard holding encoded tensors (a plain shard says <c>pt</c>).</summary>
    public const string Format = "ckpt-encoded";

    /// <summary>Every encoding a shard entry may have: compressed (<see cref="BytegroupCodec"/>) and block-mapped (<see cref="BlockMap"/>).</summary>
    private static readonly string[] Encodings = [BytegroupCodec.Name, BlockMap.Encoding];

    /// <summary>The key under which a shard header lists the bytes of tensor <paramref name="key"/> stored with <paramref name="encoding"/>.</summary>
    public static string StoredKey(string key, string encoding) => key + "#" + encoding;

    /// <summary>The tensor's key for a header entry of encoded bytes; null for an entry that is not encoded.</summary>
    public static string? TensorKeyOf(string storedKey) =>
        Encodings.FirstOrDefault(e => storedKey.EndsWith("#" + e, StringComparison.Ordinal)) is { } encoding ? storedKey[..^(encoding.Length + 1)] : null;

    /// <summary>Whether a shard header's entry is what the manifest indexes: the tensor's dtype and shape, or for an encoded one, U8 bytes under a marked key; at the same offsets.</summary>
    public static bool HeaderMatches(TensorInfo info, SafetensorsEntry entry)
    {
        var listed = info.Encoding is null
            ? info.DType == entry.DType.Name() && info.Shape.SequenceEqual(entry.Shape)
            : entry.DType == TensorDType.U8 && entry.Shape is [var length] && length == info.ByteLength && entry.Key.EndsWith("#" + info.Encoding, StringComparison.Ordinal);
        return listed && info.DataOffsets[0] == entry.Begin && info.DataOffsets[1] == entry.End;
    }

    /// <summary>The metadata of a shard: <c>pt</c> when nothing in it is encoded, else the encodings used and a note saying how to get plain files.</summary>
    public static Dictionary<string, string> Metadata(IEnumerable<string> encodings) => encodings.Distinct().Order(StringComparer.Ordinal).ToList() is { Count: > 0 } used
        ? new() { ["format"] = Format, ["encoding"] = string.Join(",", used), ["note"] = $"entries ending in {string.Join(" or ", used.Select(e => "#" + e))} are encoded tensors; `ckpt compact --decompress` writes plain safetensors" }
        : new() { ["format"] = "pt" };

    /// <summary>
    /// Encodes every tensor that <paramref name="compression"/> selects and that gets smaller; returns what the shard
    /// stores (encoded ones as U8 entries under <see cref="StoredKey"/>) and, by tensor key, each encoded tensor.
    /// </summary>
    /// <param name="tensors">the shard's tensors</param>
    /// <param name="compression">which tensors to encode, and how</param>
    /// <param name="hashes">content hashes the save computed already (incremental and sharded saves), by key: not computed again</param>
    /// <param name="cancellationToken">stops between tensors</param>
    /// <exception cref="ArgumentException">a tensor's key already ends in an encoding's mark (<see cref="StoredKey"/>)</exception>
    public static (List<NamedTensor> Stored, Dictionary<string, EncodedTensor> Encoded) Encode(IReadOnlyList<NamedTensor> tensors, TensorCompression compression,
        IReadOnlyDictionary<string, string> hashes, CancellationToken cancellationToken)
    {
        if (compression.MaxParallel < 1) throw new ArgumentOutOfRangeException(nameof(compression), compression.MaxParallel, "TensorCompression.MaxParallel must be at least 1 (or null: every core)");
        if (compression.Level < ZstdSharp.Compressor.MinCompressionLevel || compression.Level > ZstdSharp.Compressor.MaxCompressionLevel)
            throw new ArgumentOutOfRangeException(nameof(compression), compression.Level, $"TensorCompression.Level must be a zstd level from {ZstdSharp.Compressor.MinCompressionLevel} to {ZstdSharp.Compressor.MaxCompressionLevel}");
        var stored = new List<NamedTensor>(tensors.Count);
        var encoded = new Dictionary<string, EncodedTensor>(StringComparer.Ordinal);
        foreach (var tensor in tensors)
        {
            if (TensorKeyOf(tensor.Key) is not null) throw new ArgumentException($"Tensor key '{tensor.Key}' ends in '#{string.Join("' or '#", Encodings)}', which marks encoded bytes in a shard.", nameof(tensors));
            cancellationToken.ThrowIfCancellationRequested();
            var length = tensor.ByteLength;
            if (length < Math.Max(1, compression.MinBytes) || length > BytegroupCodec.MaxTensorBytes)
            {
                stored.Add(tensor);
                continue;
            }
            var raw = RawBytes(tensor.Source, length);
            var bytes = BytegroupCodec.Encode(raw, tensor.Source.DType, compression.Level, maxParallel: compression.MaxParallel);
            if (bytes.Length >= length)
            {
                stored.Add(tensor); // never stored larger than raw
                continue;
            }
            encoded[tensor.Key] = new EncodedTensor(tensor.Source.DType, tensor.Source.Shape, length, hashes.GetValueOrDefault(tensor.Key) ?? TensorHash.Of(raw), BytegroupCodec.Name);
            stored.Add(new NamedTensor(StoredKey(tensor.Key, BytegroupCodec.Name), new HostTensor(TensorDType.U8, [bytes.Length], bytes)) { Chunk = tensor.Chunk });
        }
        return (stored, encoded);
    }

    /// <summary>The index entry of a header entry: an encoded tensor under its own key, dtype and shape; any other as it is.</summary>
    public static (string Key, TensorInfo Info) IndexEntry(SafetensorsEntry entry, int shard, IReadOnlyDictionary<string, EncodedTensor> encoded, IReadOnlyDictionary<string, string> hashes)
    {
        if (TensorKeyOf(entry.Key) is { } key && encoded.TryGetValue(key, out var tensor))
            return (key, new TensorInfo(shard, tensor.DType.Name(), tensor.Shape, [entry.Begin, entry.End], tensor.Hash, tensor.Encoding, tensor.RawLength));
        return (entry.Key, new TensorInfo(shard, entry.DType.Name(), entry.Shape, [entry.Begin, entry.End], hashes.GetValueOrDefault(entry.Key)));
    }

    /// <summary>
    /// Wraps the target of an encoded tensor: it takes the stored bytes, decodes them, checks the decoded bytes against
    /// the tensor's hash, and only then fills <paramref name="inner"/> (null: only checks).
    /// </summary>
    public static ITensorTarget Decoding(ITensorTarget? inner, TensorInfo info, string source, string key) => new DecodingTarget(inner, info, source, key);

    /// <summary>Decodes the stored bytes of encoded tensor <paramref name="key"/> and checks them against its hash.</summary>
    /// <exception cref="CheckpointFormatException">the bytes do not decode, or decode to other bytes than the hash says</exception>
    public static byte[] DecodeChecked(ReadOnlyMemory<byte> stored, TensorInfo info, string source, string key)
    {
        var raw = GC.AllocateUninitializedArray<byte>(checked((int)info.LogicalLength));
        DecodeChecked(stored, info, raw, source, key);
        return raw;
    }

    /// <summary>Decodes into <paramref name="raw"/>, exactly the tensor's decoded length, and checks it against the tensor's hash.</summary>
    private static void DecodeChecked(ReadOnlyMemory<byte> stored, TensorInfo info, Memory<byte> raw, string source, string key)
    {
        TensorDTypes.TryParse(info.DType, out var dtype);
        try { BytegroupCodec.Decode(stored, dtype, raw, source); }
        catch (CheckpointFormatException e) { throw new CheckpointFormatException(source, e.Check, $"tensor '{key}': {e.Message}", e); }
        TensorHash.Verify(raw.Span, info.Hash!, source, key);
    }

    private static byte[] RawBytes(ITensorSource source, long length)
    {
        if (source is HostTensor host) return host.Data;
        var raw = GC.AllocateUninitializedArray<byte>((int)length);
        using var into = new MemoryStream(raw, writable: true);
        source.WriteTo(into);
        if (into.Position != length) throw new InvalidOperationException($"a {source.DType} tensor wrote {into.Position} bytes, expected {length}");
        return raw;
    }

    /// <summary>
    /// The stored and decoded bytes that whole loads and verifies may hold at once for the tensors they decode, across the
    /// process (a tensor larger than this takes all of it): without it, a verify that reads a shard's tensors a core's worth
    /// of ranges at a time held ten times the memory of a plain one.
    /// </summary>
    public static ReadBufferBudget DecodeBudget { get; } = new(256L << 20);

    /// <remarks>Its buffers come from the shared array pool and go back once the target is filled, so a load's garbage does not grow with the checkpoint.</remarks>
    private sealed class DecodingTarget(ITensorTarget? inner, TensorInfo info, string source, string key) : ITensorTarget
    {
        private long Footprint => Math.Min(info.ByteLength + info.LogicalLength, DecodeBudget.Capacity);

        public void Fill(Stream stored)
        {
            using var lease = DecodeBudget.AcquireAsync(Footprint, CancellationToken.None).GetAwaiter().GetResult();
            var (bytes, raw) = Rent();
            try
            {
                stored.ReadExactly(bytes.AsSpan(0, (int)info.ByteLength));
                DecodeChecked(bytes.AsMemory(0, (int)info.ByteLength), info, raw.AsMemory(0, (int)info.LogicalLength), source, key);
                inner?.Fill(new MemoryStream(raw, 0, (int)info.LogicalLength, writable: false));
            }
            finally { Return(bytes, raw); }
        }

        public async Task FillAsync(TensorRangeReader read, CancellationToken cancellationToken)
        {
            using var lease = await DecodeBudget.AcquireAsync(Footprint, cancellationToken).ConfigureAwait(false);
            var (bytes, raw) = Rent();
            try
            {
                await read(bytes.AsMemory(0, (int)info.ByteLength), 0, cancellationToken).ConfigureAwait(false);
                DecodeChecked(bytes.AsMemory(0, (int)info.ByteLength), info, raw.AsMemory(0, (int)info.LogicalLength), source, key);
                if (inner is not null)
                {
                    await inner.FillAsync((destination, offset, _) =>
                    {
                        raw.AsMemory((int)offset, destination.Length).CopyTo(destination);
                        return Task.CompletedTask;
                    }, cancellationToken).ConfigureAwait(false);
                }
            }
            finally { Return(bytes, raw); }
        }

        private (byte[] Stored, byte[] Raw) Rent() =>
            (ArrayPool<byte>.Shared.Rent(checked((int)info.ByteLength)), ArrayPool<byte>.Shared.Rent(checked((int)info.LogicalLength)));

        private static void Return(byte[] stored, byte[] raw)
        {
            ArrayPool<byte>.Shared.Return(stored);
            ArrayPool<byte>.Shared.Return(raw);
        }
    }
}
