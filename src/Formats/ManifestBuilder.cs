using System.Text.Json.Nodes;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// The one way a manifest is made, by a local save and by a run grain's commit alike: the checkpoint's own shards
/// first, shards reused from earlier checkpoints after them (each listed once however many tensors it serves), the
/// tensor index, and bytes that this build's reader accepts before anything is written.
/// </summary>
public sealed class ManifestBuilder(IEnumerable<ShardInfo> ownShards)
{
    private readonly List<ShardInfo> _shards = [.. ownShards];
    private readonly Dictionary<string, TensorInfo> _tensors = new(StringComparer.Ordinal);

    /// <summary>The tensor index so far: key → where its bytes are, in the order the keys were added.</summary>
    public IReadOnlyDictionary<string, TensorInfo> Tensors => _tensors;

    /// <summary>Indexes a tensor stored in one of the checkpoint's own shards; false when the key is indexed already.</summary>
    public bool TryAdd(string key, TensorInfo tensor) => _tensors.TryAdd(key, tensor);

    /// <summary>Indexes a tensor whose bytes an earlier checkpoint's shard holds; false when the key is indexed already.</summary>
    public bool TryAddReused(string key, TensorInfo tensor, ShardInfo shard) => _tensors.TryAdd(key, tensor with { Shard = _shards.IndexOrAdd(shard) });

    /// <summary>Lists a shard of an earlier checkpoint that no index entry points into but whose bytes the checkpoint uses (blocks of a block-mapped tensor), once.</summary>
    public void AddReferenced(ShardInfo shard) => _shards.IndexOrAdd(shard);

    /// <summary>
    /// The manifest of the shards and tensors added so far, in the oldest format version that holds them. Nothing is checked here:
    /// <see cref="Serialize"/> refuses a manifest the reader would refuse.
    /// </summary>
    /// <param name="identity">The run, name, iteration and world size the manifest records.</param>
    /// <param name="createdUtc">When the checkpoint was made.</param>
    /// <param name="state">The non-tensor state, with a <c>{"$tensor": "key"}</c> leaf for each tensor.</param>
    /// <param name="sharded">The tensors stored in chunks, by the key the state references; empty when there are none.</param>
    /// <param name="order">The keys in the order the index lists them (users see it in <c>ckpt inspect</c>); null keeps the order they were added in.</param>
    public CheckpointManifest Build(CheckpointIdentity identity, DateTimeOffset createdUtc, JsonObject state,
        IReadOnlyDictionary<string, ShardedTensorInfo> sharded, IEnumerable<string>? order = null) => new()
    {
        // Version 4 only when needed: a checkpoint without encoded tensors stays readable by builds that predate them.
        FormatVersion = _tensors.Values.Any(t => t.Encoding is not null) ? CheckpointManifest.CurrentFormatVersion : CheckpointManifest.UnencodedFormatVersion,
        Run = identity.Run,
        Name = identity.Name,
        Iteration = identity.Iteration,
        WorldSize = identity.WorldSize,
        CreatedUtc = createdUtc,
        Shards = _shards,
        Tensors = order is null ? _tensors : order.ToDictionary(key => key, key => _tensors[key], StringComparer.Ordinal),
        Sharded = sharded,
        State = state,
    };

    /// <summary>The manifest's bytes, refused (<see cref="CheckpointFormatException"/>) when this build's reader would refuse them, e.g. state nested too deep.</summary>
    public static byte[] Serialize(CheckpointManifest manifest, string checkpointKey)
    {
        var bytes = ManifestJson.Serialize(manifest);
        ManifestJson.Parse(bytes, StoreLayout.ManifestKey(checkpointKey));
        return bytes;
    }
}
