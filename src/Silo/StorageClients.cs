using Azure.Data.Tables;
using Azure.Identity;
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
    /// <summary>The account the settings name: as the silo's identity when <see cref="StorageSettings.BlobServiceUri"/> is set, else by connection string.</summary>
    public static StorageAccount Account(StorageSettings storage) => storage.UsesIdentity
        ? StorageAccount.FromIdentity(new Uri(storage.BlobServiceUri!), new DefaultAzureCredential())
        : StorageAccount.FromConnectionString(storage.ConnectionString);

    public static BlobServiceClient Blobs(StorageAccount account, Action<BlobClientOptions>? configure = null)
    {
        var options = AzureBlobStore.CreateClientOptions(maxRetries: 2, networkTimeout: TimeSpan.FromSeconds(8));
        configure?.Invoke(options);
        return account.BlobService(options);
    }

    /// <summary>
    /// The table service of membership and reminders, reached the same way as the blobs. With an identity,
    /// <see cref="StorageSettings.TableServiceUri"/> is there: <see cref="SiloConfiguration.Check"/> refuses to start without it.
    /// </summary>
    public static TableServiceClient Tables(StorageSettings storage, StorageAccount account) => account.Credential is { } credential
        ? new TableServiceClient(new Uri(storage.TableServiceUri!), credential)
        : new TableServiceClient(storage.ConnectionString);
}
