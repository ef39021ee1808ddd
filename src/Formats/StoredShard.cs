using Checkpointing.Abstractions;

namespace Checkpointing.Formats;

/// <summary>A safetensors shard written atomically into a store, with its layout, length and CRC-64 taken while streaming.</summary>
public sealed record StoredShard(IReadOnlyList<SafetensorsEntry> Layout, long Length, string Checksum)
{
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
