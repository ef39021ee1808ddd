using Azure.Storage.Blobs;
using Checkpointing.Storage;

namespace Checkpointing.Silo;

/// <summary>
/// Blob clients for grain state and the checkpoint store. Their requests (state writes, manifests,
/// deletes) run inside grain turns, where the caller gives up after Orleans' 30 s response timeout.
/// The SDK default (100 s per try, backoff up to a minute) would keep a turn, and so the run, stuck
/// long after that while piling retries onto an overloaded account; with 1,000 runs that is the
/// difference between a slow commit and a fleet of timeouts. Three tries of 8 s plus 0.2 s and 0.4 s
/// of backoff end in under 30 s, so a failure reaches the grain while its caller still listens.
/// </summary>
internal static class StorageClients
{
    public static BlobServiceClient Blobs(string connectionString, Action<BlobClientOptions>? configure = null)
    {
        var options = AzureBlobStore.CreateClientOptions(maxRetries: 2, networkTimeout: TimeSpan.FromSeconds(8));
        configure?.Invoke(options);
        return new BlobServiceClient(connectionString, options);
    }
}
