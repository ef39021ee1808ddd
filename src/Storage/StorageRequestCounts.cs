using Azure.Core;
using Azure.Core.Pipeline;
using Azure.Storage.Blobs;

namespace Checkpointing.Storage;

/// <summary>
/// Counts the requests blob clients send, by method, as their responses arrive (every try, so retries count), with the bytes of
/// successful PUT bodies: what a commit costs its storage in requests (<c>/stats</c> of a silo; <c>ckpt-bench commits</c>).
/// Thread-safe; attach one instance to as many clients' options as should count together.
/// </summary>
public sealed class StorageRequestCounts
{
    private long _puts;
    private long _putBytes;
    private long _gets;
    private long _heads;
    private long _deletes;
    private long _others;

    /// <summary>PUT requests (blobs, blocks, block lists, container creation).</summary>
    public long Puts => Interlocked.Read(ref _puts);
    /// <summary>Bytes of the bodies of successful PUT requests.</summary>
    public long PutBytes => Interlocked.Read(ref _putBytes);
    /// <summary>GET requests (downloads, listings).</summary>
    public long Gets => Interlocked.Read(ref _gets);
    /// <summary>HEAD requests (properties, existence checks).</summary>
    public long Heads => Interlocked.Read(ref _heads);
    /// <summary>DELETE requests.</summary>
    public long Deletes => Interlocked.Read(ref _deletes);
    /// <summary>Requests of any other method.</summary>
    public long Others => Interlocked.Read(ref _others);
    /// <summary>Every request counted.</summary>
    public long Total => Puts + Gets + Heads + Deletes + Others;

    /// <summary>Makes clients created with <paramref name="options"/> count their requests here.</summary>
    public BlobClientOptions Attach(BlobClientOptions options)
    {
        options.AddPolicy(new Counter(this), HttpPipelinePosition.PerRetry);
        return options;
    }

    private void Count(HttpMessage message)
    {
        var method = message.Request.Method;
        if (method == RequestMethod.Put)
        {
            Interlocked.Increment(ref _puts);
            if (message.Response.Status is >= 200 and < 300 && message.Request.Content is { } content && content.TryComputeLength(out var length))
                Interlocked.Add(ref _putBytes, length);
        }
        else if (method == RequestMethod.Get) Interlocked.Increment(ref _gets);
        else if (method == RequestMethod.Head) Interlocked.Increment(ref _heads);
        else if (method == RequestMethod.Delete) Interlocked.Increment(ref _deletes);
        else Interlocked.Increment(ref _others);
    }

    private sealed class Counter(StorageRequestCounts counts) : HttpPipelineSynchronousPolicy
    {
        public override void OnReceivedResponse(HttpMessage message) => counts.Count(message);
    }
}
