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
    /// version 3 added sharded tensors, stored as chunks (docs/format.md#sharded-tensors-and-resharding); version 4 added
    /// encoded (compressed) tensors (docs/compression.md), and is written only by a checkpoint that has one.
    /// </summary>
    public const int CurrentFormatVersion = 4;

    /// <summary>The version of a manifest without encoded tensors: what builds before compression read.</summary>
    public const int UnencodedFormatVersion = 3;

    /// <summary>The oldest version this build still reads.</summary>
    public const int OldestReadableFormatVersion = 1;

    /// <summary>The format version the manifest was written in, from <see cref="OldestReadableFormatVersion"/> to <see cref="CurrentFormatVersion"/>.</summary>
    public required int FormatVersion { get; init; }
    /// <summary>The run the checkpoint belongs to: "tenant/run" in cluster mode, "local" for a checkpoint saved to a local folder.</summary>
    public required string Run { get; init; }
    /// <summary>The checkpoint's name, which is also its folder's name (e.g. <c>model_0000019</c>).</summary>
    public required string Name { get; init; }
    /// <summary>The training iteration the checkpoint was taken at; null when the save named none.</summary>
    public long? Iteration { get; init; }
    /// <summary>The world size of the save: how many ranks wrote the checkpoint together, 1 for a single-process save (a CLI conversion records its part count).</summary>
    public required int WorldSize { get; init; }
    /// <summary>When the manifest was built, in UTC.</summary>
    public required DateTimeOffset CreatedUtc { get; init; }
    /// <summary>Every shard the checkpoint needs, its own and those it reuses from earlier checkpoints; <see cref="TensorInfo.Shard"/> indexes this list.</summary>
    public required IReadOnlyList<ShardInfo> Shards { get; init; }
    /// <summary>Full tensor key → where its bytes are. Keys are '/'-joined paths into <see cref="State"/>.</summary>
    public required IReadOnlyDictionary<string, TensorInfo> Tensors { get; init; }
    /// <summary>The non-tensor state as JSON; each tensor in it is a leaf <c>{"$tensor": "key"}</c> naming an entry of <see cref="Tensors"/> or <see cref="Sharded"/>.</summary>
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
    public long TensorBytes => Tensors.Values.Sum(t => t.LogicalLength);

    /// <summary>The earlier checkpoints whose folders hold shards this one reuses.</summary>
    public IEnumerable<string> ReusedFrom => Shards.Select(s => s.Checkpoint).OfType<string>().Distinct();
}
