using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>A safetensors shard written atomically into a store, with its layout, length and CRC-64 taken while streaming.</summary>
public sealed record StoredShard(IReadOnlyList<SafetensorsEntry> Layout, long Length, string Checksum)
{
    /// <summary>
    /// Writes <paramref name="tensors"/> as a safetensors file (metadata <c>format: pt</c>) to <paramref name="key"/>,
    /// which appears only once complete and durable. The checksum covers the whole file, header included.
    /// </summary>
    /// <param name="store">the store to write to</param>
    /// <param name="key">the shard's store key</param>
    /// <param name="tensors">the tensors, in any order: the file orders them by element size, then key</param>
    /// <param name="progress">gets each tensor's byte count as it completes; null for none</param>
    /// <param name="cancellationToken">cancels the write; then nothing becomes visible</param>
    /// <exception cref="ArgumentException">Two tensors share a key.</exception>
    /// <exception cref="InvalidOperationException">A tensor wrote another number of bytes than its dtype and shape need.</exception>
    public static async Task<StoredShard> WriteAsync(ICheckpointStore store, string key, IReadOnlyList<NamedTensor> tensors,
        IProgress<long>? progress, CancellationToken cancellationToken)
    {
        StoredShard? result = null;
        await store.WriteAsync(key, (stream, ct) =>
        {
            var hashing = new ChecksummingWriteStream(stream);
            var layout = SafetensorsShardWriter.Write(hashing, tensors, new Dictionary<string, string> { ["format"] = "pt" }, progress);
            result = new StoredShard(layout, hashing.BytesWritten, hashing.Checksum);
            return Task.CompletedTask;
        }, cancellationToken).ConfigureAwait(false);
        return result!;
    }
}
