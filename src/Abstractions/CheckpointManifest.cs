using System.Text.Json.Nodes;

namespace Checkpointing.Abstractions;

/// <summary>
/// The document that makes a checkpoint exist (DESIGN.md §5): every shard with its length and
/// checksum, an index of every tensor, and the non-tensor state whose tensor leaves reference
/// the index as <c>{"$tensor": "key"}</c>.
/// </summary>
public sealed record CheckpointManifest
{
    public const int CurrentFormatVersion = 1;

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

    public long TotalBytes => Shards.Sum(s => s.Bytes);
}

/// <param name="Path">The shard's key relative to the checkpoint folder.</param>
/// <param name="Bytes">Exact file length.</param>
/// <param name="Checksum">"crc64:" and 16 hex digits: CRC-64/ECMA-182 (System.IO.Hashing.Crc64) of the whole file.</param>
[GenerateSerializer, Immutable]
public sealed record ShardInfo([property: Id(0)] string Path, [property: Id(1)] long Bytes, [property: Id(2)] string Checksum);

/// <param name="Shard">Index into <see cref="CheckpointManifest.Shards"/>.</param>
/// <param name="DType">safetensors dtype name, e.g. "F32".</param>
/// <param name="DataOffsets">[begin, end) relative to the shard's data section, as in the safetensors header.</param>
[GenerateSerializer, Immutable]
public sealed record TensorInfo([property: Id(0)] int Shard, [property: Id(1)] string DType, [property: Id(2)] long[] Shape, [property: Id(3)] long[] DataOffsets)
{
    public long ByteLength => DataOffsets[1] - DataOffsets[0];
}
