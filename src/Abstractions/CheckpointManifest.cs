using System.Text.Json.Nodes;

namespace Checkpointing.Abstractions;

/// <summary>
/// The document that makes a checkpoint exist (DESIGN.md §5): every shard with its length and
/// checksum, an index of every tensor, and the non-tensor state whose tensor leaves reference
/// the index as <c>{"$tensor": "key"}</c>.
/// </summary>
public sealed record CheckpointManifest
{
    /// <summary>
    /// Version 2 added tensor content hashes and shards referenced from earlier checkpoints of the run (DESIGN.md §12);
    /// version 3 added sharded tensors, stored as chunks (DESIGN.md §11).
    /// </summary>
    public const int CurrentFormatVersion = 3;

    /// <summary>The oldest version this build still reads.</summary>
    public const int OldestReadableFormatVersion = 1;

    public required int FormatVersion { get; init; }
    public required string Run { get; init; }
    public required string Name { get; init; }
    public long? Iteration { get; init; }
    public required int WorldSize { get; init; }
    public required DateTimeOffset CreatedUtc { get; init; }
    public required IReadOnlyList<ShardInfo> Shards { get; init; }
    /// <summary>Full tensor key → where its bytes are. Keys are '/'-joined paths into <see cref="State"/>.</summary>
    public required IReadOnlyDictionary<string, TensorInfo> Tensors { get; init; }
    public required JsonObject State { get; init; }

    /// <summary>
    /// Tensors stored in chunks (DESIGN.md §11), by the key the state references; each chunk's bytes are an entry of
    /// <see cref="Tensors"/> that the state does not reference. Empty for a checkpoint of whole tensors.
    /// </summary>
    public IReadOnlyDictionary<string, ShardedTensorInfo> Sharded { get; init; } = new Dictionary<string, ShardedTensorInfo>(StringComparer.Ordinal);

    /// <summary>Bytes of every shard this checkpoint needs, its own and those it references in earlier checkpoints.</summary>
    public long TotalBytes => Shards.Sum(s => s.Bytes);

    /// <summary>Bytes of the shards this checkpoint wrote itself (physical bytes; what an incremental save cost).</summary>
    public long WrittenBytes => Shards.Where(s => s.Checkpoint is null).Sum(s => s.Bytes);

    /// <summary>Bytes of tensor data in the state (logical bytes, chunks of sharded tensors included), wherever they are stored.</summary>
    public long TensorBytes => Tensors.Values.Sum(t => t.ByteLength);

    /// <summary>The earlier checkpoints whose folders hold shards this one reuses.</summary>
    public IEnumerable<string> ReusedFrom => Shards.Select(s => s.Checkpoint).OfType<string>().Distinct();
}

public static class ShardLists
{
    /// <summary>
    /// The index of <paramref name="shard"/> in a shard list being built, added at the end the first time: a reused
    /// shard is listed once however many tensors reference it.
    /// </summary>
    public static int IndexOrAdd(this List<ShardInfo> shards, ShardInfo shard)
    {
        var index = shards.IndexOf(shard);
        if (index >= 0) return index;
        shards.Add(shard);
        return shards.Count - 1;
    }
}

/// <param name="Path">The shard's key relative to the checkpoint folder.</param>
/// <param name="Bytes">Exact file length.</param>
/// <param name="Checksum">"crc64:" and 16 hex digits: CRC-64/ECMA-182 (System.IO.Hashing.Crc64) of the whole file.</param>
/// <param name="Checkpoint">The earlier checkpoint of the same run whose folder holds the shard (an incremental
/// checkpoint reuses its bytes), or null for a shard in this checkpoint's own folder.</param>
public sealed record ShardInfo(string Path, long Bytes, string Checksum, string? Checkpoint = null);

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header.</param>
/// <param name="Hash">"xxh128:" and 32 hex digits: XxHash128 of the tensor's bytes, recorded by incremental saves; null otherwise.</param>
public sealed record TensorInfo(int Shard, string DType, long[] Shape, long[] DataOffsets, string? Hash = null)
{
    public long ByteLength => DataOffsets[1] - DataOffsets[0];
}

/// <summary>A tensor stored in chunks: its dtype, global shape, and the chunks that together hold each element exactly once.</summary>
public sealed record ShardedTensorInfo(string DType, long[] Shape, IReadOnlyList<TensorChunk> Chunks)
{
    /// <summary>The index entries holding the chunks of <paramref name="sharded"/>: entries the state never references directly.</summary>
    public static HashSet<string> ChunkKeys(IEnumerable<ShardedTensorInfo> sharded) =>
        sharded.SelectMany(t => t.Chunks).Select(c => c.Tensor).ToHashSet(StringComparer.Ordinal);
}

/// <summary>
/// One chunk of a sharded tensor: the <see cref="CheckpointManifest.Tensors"/> entry holding its bytes and where it lies in
/// the global tensor, either a box at <paramref name="Offsets"/> (its extent is the entry's shape) or, for a flat slice
/// (a 1-D entry), the row-major elements from <paramref name="FlatOffset"/> on.
/// </summary>
public sealed record TensorChunk(string Tensor, long[]? Offsets, long? FlatOffset)
{
    /// <summary>The chunk's place in the global tensor; throws <see cref="ArgumentException"/> when it does not fit.</summary>
    public TensorLayout Layout(long[] globalShape, TensorInfo stored) => Offsets is not null
        ? TensorLayout.Box(globalShape, Offsets, stored.Shape)
        : stored.Shape.Length == 1 ? TensorLayout.Flat(globalShape, FlatOffset ?? 0, stored.Shape[0])
        : throw new ArgumentException($"A flat chunk is stored as a 1-d tensor; '{Tensor}' has {stored.Shape.Length} dimensions.");

    /// <summary>A chunk for a rank's slice; its bytes are stored under <paramref name="tensor"/>.</summary>
    public static TensorChunk Of(string tensor, TensorLayout layout) => new(tensor, layout.Offsets, layout.FlatOffset);

    /// <summary>The key a chunk's bytes are stored under: the tensor's key and where the chunk starts (unique: chunks never overlap).</summary>
    public static string KeyFor(string tensorKey, TensorLayout layout) => layout.IsFlat
        ? $"{tensorKey}@flat{layout.FlatOffset}"
        : $"{tensorKey}@{string.Join(',', layout.Offsets!)}";
}
