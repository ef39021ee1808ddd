using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;
using Orleans.Storage;

namespace Checkpointing.Silo;

/// <summary>
/// Grain-state writes this silo made since it started, for <c>GET /stats</c> (what <c>ckpt-bench commits</c>
/// reports): with Azure Blob grain state the request bodies of successful blob PUTs, with memory grain
/// state the serialized state handed to the memory store.
/// </summary>
public sealed class GrainStateWrites
{
    private long _writes;
    private long _bytes;

    public long Writes => Interlocked.Read(ref _writes);
    public long Bytes => Interlocked.Read(ref _bytes);

    public void Add(long bytes)
    {
        Interlocked.Increment(ref _writes);
        Interlocked.Add(ref _bytes, bytes);
    }

    /// <summary>Makes a grain-state blob client count every successful blob PUT (container creation does not count).</summary>
    public void CountPuts(BlobClientOptions options) => options.AddPolicy(new PutCounter(this), HttpPipelinePosition.PerRetry);

    /// <summary>Counts what the memory grain storage serializes; it serializes only to write.</summary>
    public IGrainStorageSerializer Counting(IGrainStorageSerializer inner) => new CountingSerializer(inner, this);

    private sealed class PutCounter(GrainStateWrites writes) : HttpPipelineSynchronousPolicy
    {
        public override void OnReceivedResponse(HttpMessage message)
        {
            var request = message.Request;
            if (request.Method == RequestMethod.Put && message.Response.Status is >= 200 and < 300
                && !request.Uri.Query.Contains("restype=container", StringComparison.Ordinal))
            {
                writes.Add(request.Content is { } content && content.TryComputeLength(out var length) ? length : 0);
            }
        }
    }

    private sealed class CountingSerializer(IGrainStorageSerializer inner, GrainStateWrites writes) : IGrainStorageSerializer
    {
        public BinaryData Serialize<T>(T? input)
        {
            var data = inner.Serialize(input);
            writes.Add(data.ToMemory().Length);
            return data;
        }

        public T? Deserialize<T>(BinaryData input) => inner.Deserialize<T>(input);
    }
}
