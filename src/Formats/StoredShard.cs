using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>
/// A safetensors shard written atomically into a store, with its layout, length and CRC-64 taken while streaming, and the
/// tensors it stores encoded (docs/compression.md), by tensor key.
/// </summary>
public sealed record StoredShard(IReadOnlyList<SafetensorsEntry> Layout, long Length, string Checksum, IReadOnlyDictionary<string, EncodedTensor> Encoded)
{
    /// <summary>
    /// Writes <paramref name="tensors"/> as a safetensors file to <paramref name="key"/>, which appears only once complete
    /// and durable. The checksum covers the whole file, header included. With <paramref name="compression"/>, tensors that get
    /// smaller are stored encoded (<see cref="ShardEncoding"/>), which holds their encoded bytes in memory until the shard is written.
    /// </summary>
    /// <param name="store">the store to write to</param>
    /// <param name="key">the shard's store key</param>
    /// <param name="tensors">the tensors, in any order: the file orders them by element size, then key</param>
    /// <param name="progress">gets each tensor's byte count (decoded) as it completes; null for none</param>
    /// <param name="cancellationToken">cancels the write; then nothing becomes visible</param>
    /// <param name="compression">how tensors are compressed; null: stored as they are (metadata <c>format: pt</c>)</param>
    /// <param name="hashes">content hashes the save computed already, by key, which encoded tensors record without hashing again; null: none</param>
    /// <param name="blockMapped">block-mapped tensors by tensor key (<see cref="BlockPlanner"/>), whose entries are among <paramref name="tensors"/> already; null: none</param>
    /// <exception cref="ArgumentException">Two tensors share a key.</exception>
    /// <exception cref="InvalidOperationException">A tensor wrote another number of bytes than its dtype and shape need.</exception>
    public static async Task<StoredShard> WriteAsync(ICheckpointStore store, string key, IReadOnlyList<NamedTensor> tensors,
        IProgress<long>? progress, CancellationToken cancellationToken, TensorCompression? compression = null, IReadOnlyDictionary<string, string>? hashes = null,
        IReadOnlyDictionary<string, EncodedTensor>? blockMapped = null)
    {
        bool IsBlockMapped(NamedTensor t) => blockMapped is not null && ShardEncoding.TensorKeyOf(t.Key) is { } tensorKey && blockMapped.ContainsKey(tensorKey);
        var mapped = tensors.Where(IsBlockMapped).ToList();
        var others = tensors.Where(t => !IsBlockMapped(t)).ToList();
        var (stored, encoded) = compression is null
            ? (others, new Dictionary<string, EncodedTensor>())
            : ShardEncoding.Encode(others, compression, hashes ?? new Dictionary<string, string>(), cancellationToken);
        stored = [.. stored, .. mapped];
        foreach (var entry in mapped)
        {
            var tensorKey = ShardEncoding.TensorKeyOf(entry.Key)!;
            encoded[tensorKey] = blockMapped![tensorKey];
        }
        var reportAs = encoded.ToDictionary(e => ShardEncoding.StoredKey(e.Key, e.Value.Encoding), e => e.Value.RawLength, StringComparer.Ordinal);
        StoredShard? result = null;
        await store.WriteAsync(key, (stream, ct) =>
        {
            var hashing = new ChecksummingWriteStream(stream);
            var layout = SafetensorsShardWriter.Write(hashing, stored, ShardEncoding.Metadata(encoded.Values.Select(e => e.Encoding)), progress, reportAs);
            result = new StoredShard(layout, hashing.BytesWritten, hashing.Checksum, encoded);
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }

    /// <summary>The index entries of the shard's tensors: encoded ones under their own key, dtype and shape; <paramref name="hashes"/> for the others.</summary>
    public IEnumerable<(string Key, TensorInfo Info)> Index(int shard, IReadOnlyDictionary<string, string> hashes) =>
        Layout.Select(entry => ShardEncoding.IndexEntry(entry, shard, Encoded, hashes));
}
