using System.Text.Json.Nodes;

namespace Checkpointing.Abstractions;

/// <summary>
/// The document that makes a checkpoint exist (docs/format.md#native-checkpoint-layout): every shard with its length and
/// checksum, an index of every tensor, and the non-tensor state whose tensor leaves reference
/// the index as <c>{"$tensor": "key"}</c>.
/// </summary>
public sealed record CheckpointManifest
{
    /// <summary>
    /// Version 2 added tensor content hashes and shards referenced from earlier checkpoints of the run (docs/format.md#incremental-checkpoints);
    /// version 3 added sharded tensors, stored as chunks (docs/format.md#sharded-tensors-and-resharding).
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
    /// Tensors stored in chunks (docs/format.md#sharded-tensors-and-resharding), by the key the state references; each chunk's bytes are an entry of
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
