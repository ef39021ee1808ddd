using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// Chooses, for an incremental save, which tensors need not be written: those whose content hash,
/// dtype and shape equal a tensor stored by an earlier committed checkpoint of the run. Each stored
/// range is claimed by at most one tensor of the new checkpoint, so a manifest never indexes two
/// tensors to the same bytes (empty tensors are always written, so every reused range is distinct). References always name the folder that physically holds the shard,
/// never a checkpoint that itself only references it.
/// </summary>
internal static class ReusableBytes
{
    /// <param name="Hash">The tensor's content hash (<see cref="TensorHash"/>).</param>
    /// <param name="DType">The safetensors dtype name.</param>
    /// <param name="Shape">The shape's dimensions, comma-joined.</param>
    /// <param name="Key">The stored tensor's key when only a tensor of the same key may reuse it, else null.</param>
    private readonly record struct Content(string Hash, string DType, string Shape, string? Key);

    /// <param name="store">The store holding the new checkpoint and the earlier ones; a shard is claimed from only while it is there at its recorded length.</param>
    /// <param name="checkpointKey">The new checkpoint's store key.</param>
    /// <param name="earlier">The earlier committed checkpoints of the run whose tensors may be reused, by name with their manifests.</param>
    /// <param name="tensors">The tensors of the new checkpoint.</param>
    /// <param name="hashes">Each tensor's content hash, by key (<see cref="TensorHash.All"/>).</param>
    /// <param name="sameKeyOnly">For ranks that claim independently (cluster mode): reuse a stored tensor only for the tensor of
    /// the same key, so that no two ranks claim the same bytes, and never from a folder of the checkpoint's own name.</param>
    /// <param name="ct">Cancels the store lookups.</param>
    /// <returns>Tensor key → the shard (with the folder that holds it) and the stored tensor's index entry.</returns>
    public static async Task<Dictionary<string, (ShardInfo Shard, TensorInfo Tensor)>> ClaimAsync(ICheckpointStore store, string checkpointKey,
        IReadOnlyList<EarlierCheckpoint> earlier, IReadOnlyList<NamedTensor> tensors, IReadOnlyDictionary<string, string> hashes, bool sameKeyOnly, CancellationToken ct)
    {
        var ownName = checkpointKey[StoreLayout.RunPrefixOf(checkpointKey).Length..];
        var candidates = new Dictionary<Content, List<(ShardInfo Shard, TensorInfo Tensor)>>();
        var ranges = new HashSet<(string?, string, long)>();
        foreach (var (name, manifest) in earlier)
        {
            foreach (var (storedKey, tensor) in manifest.Tensors)
            {
                if (tensor.Hash is null || tensor.ByteLength == 0) continue; // an empty tensor costs a header entry: never worth a reference
                if (tensor.Encoding == BlockMap.Encoding) continue; // its map names other shards, which a whole reference would not list
                var stored = manifest.Shards[tensor.Shard];
                var holder = stored.Checkpoint ?? name;
                if (sameKeyOnly && holder == ownName) continue; // a rank may not reference an earlier attempt at its own name: the run grain replaces it
                var shard = stored with { Checkpoint = holder == ownName ? null : holder };
                if (!ranges.Add((shard.Checkpoint, shard.Path, tensor.DataOffsets[0]))) continue; // the same bytes, seen through another manifest
                var content = new Content(tensor.Hash, tensor.DType, string.Join(',', tensor.Shape), sameKeyOnly ? storedKey : null);
                if (!candidates.TryGetValue(content, out var list)) candidates[content] = list = [];
                list.Add((shard, tensor));
            }
        }

        var claimed = new Dictionary<string, (ShardInfo, TensorInfo)>(StringComparer.Ordinal);
        var present = new Dictionary<ShardInfo, bool>();
        foreach (var t in tensors)
        {
            var content = new Content(hashes[t.Key], t.Source.DType.Name(), string.Join(',', t.Source.Shape), sameKeyOnly ? t.Key : null);
            if (!candidates.TryGetValue(content, out var list)) continue;
            for (var i = 0; i < list.Count; i++)
            {
                var (shard, tensor) = list[i];
                if (!await IsPresentAsync(store, checkpointKey, shard, present, ct).ConfigureAwait(false)) continue;
                claimed[t.Key] = (shard, tensor);
                list.RemoveAt(i);
                break;
            }
        }
        return claimed;
    }

    /// <summary>Whether the shard is still in the store at its recorded length (one lookup per shard): a damaged earlier checkpoint is not built upon.</summary>
    private static async Task<bool> IsPresentAsync(ICheckpointStore store, string checkpointKey, ShardInfo shard, Dictionary<ShardInfo, bool> known, CancellationToken ct)
    {
        if (!known.TryGetValue(shard, out var present))
        {
            var entry = await store.GetEntryAsync(StoreLayout.ShardKey(checkpointKey, shard), ct).ConfigureAwait(false);
            known[shard] = present = entry?.Length == shard.Bytes;
        }
        return present;
    }
}
