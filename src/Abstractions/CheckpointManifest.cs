using System.Text.Json.Nodes;

namespace Checkpointing.Abstractions;

/// <summary>
/// The document that makes a checkpoint exist (DESIGN.md §5): every shard with its length and
/// checksum, an index of every tensor, and the non-tensor state whose tensor leaves reference
/// the index as <c>{"$tensor": "key"}</c>.
/// </summary>
public sealed record CheckpointManifest
{
    /// <summary>Version 2 added tensor content hashes and shards referenced from earlier checkpoints of the run (DESIGN.md §12).</summary>
    public const int CurrentFormatVersion = 2;

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

    /// <summary>Bytes of every shard this checkpoint needs, its own and those it references in earlier checkpoints.</summary>
    public long TotalBytes => Shards.Sum(s => s.Bytes);

    /// <summary>Bytes of the shards this checkpoint wrote itself (physical bytes; what an incremental save cost).</summary>
    public long WrittenBytes => Shards.Where(s => s.Checkpoint is null).Sum(s => s.Bytes);

    /// <summary>Bytes of tensor data in the state (logical bytes), wherever they are stored.</summary>
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
[GenerateSerializer, Immutable]
public sealed record ShardInfo([property: Id(0)] string Path, [property: Id(1)] long Bytes, [property: Id(2)] string Checksum, [property: Id(3)] string? Checkpoint = null);

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header.</param>
/// <param name="Hash">"xxh128:" and 32 hex digits: XxHash128 of the tensor's bytes, recorded by incremental saves; null otherwise.</param>
[GenerateSerializer, Immutable]
public sealed record TensorInfo([property: Id(0)] int Shard, [property: Id(1)] string DType, [property: Id(2)] long[] Shape, [property: Id(3)] long[] DataOffsets, [property: Id(4)] string? Hash = null)
{
    public long ByteLength => DataOffsets[1] - DataOffsets[0];
}
