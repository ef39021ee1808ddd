using System.Runtime.CompilerServices;
using Azure;
using Azure.Core;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Azure.Storage.Sas;
using Checkpointing.Abstractions;

namespace Checkpointing.Storage;

/// <summary>
/// A store over one Azure Blob container (Azurite locally). Objects are block blobs. An object of at
/// most one block (<see cref="AzureBlobStoreOptions.BlockSize"/>) is buffered and sent as one Put Blob
/// request after the writer finished; a larger one is staged in blocks in parallel with a bounded
/// number of buffers and becomes visible only when the block list is committed after the writer
/// finished. Either way a failed or cancelled write leaves nothing. Requests carry a checksum only
/// if <see cref="AzureBlobStoreOptions.TransferChecksum"/> asks for one. Retries and timeouts come from the
/// <see cref="BlobClientOptions"/> the container client was created with (<see cref="CreateClientOptions"/>).
/// </summary>
public sealed class AzureBlobStore(BlobContainerClient container, AzureBlobStoreOptions? options = null) : ICheckpointStore, IGrantingStore
{
    private readonly AzureBlobStoreOptions _options = options ?? new AzureBlobStoreOptions();
    private readonly DelegationKeys _delegationKeys = new(container);
    private int _containerReady;

    /// <summary>"blob container " and the container's URI, for logs and errors.</summary>
    public string Description => $"blob container {container.Uri}";

    /// <summary>The container client every request goes through.</summary>
    public BlobContainerClient Container => container;

    /// <summary>
    /// Exponential retries, a per-try network timeout suited to multi-megabyte blocks, and at most
    /// <paramref name="maxConcurrentRequests"/> requests of the client in flight (<see cref="ConcurrencyLimitPolicy"/>).
    /// </summary>
    public static BlobClientOptions CreateClientOptions(int maxRetries = 5, TimeSpan? networkTimeout = null, int maxConcurrentRequests = DefaultMaxConcurrentRequests)
    {
        var options = new BlobClientOptions
        {
            Retry =
            {
                Mode = RetryMode.Exponential,
                MaxRetries = maxRetries,
                Delay = TimeSpan.FromMilliseconds(200),
                MaxDelay = TimeSpan.FromSeconds(10),
                NetworkTimeout = networkTimeout ?? TimeSpan.FromSeconds(100),
            },
        };
        options.AddPolicy(new ConcurrencyLimitPolicy(maxConcurrentRequests), HttpPipelinePosition.PerCall);
        return options;
    }

    /// <summary>Enough to keep a storage account busy from one process; small enough that a fleet of processes on one account queues at home.</summary>
    public const int DefaultMaxConcurrentRequests = 32;

    /// <summary>
    /// A store over container <paramref name="containerName"/> of the account <paramref name="connectionString"/> names, with
    /// the retries, timeout and concurrency limit of <see cref="CreateClientOptions"/>. The container is created by the first
    /// write or listing when it does not exist.
    /// </summary>
    /// <param name="connectionString">An Azure Storage connection string (Azurite's for local runs).</param>
    /// <param name="containerName">The container that holds the objects.</param>
    /// <param name="options">Block and range sizes, buffers in flight and transfer checksums; null takes the defaults.</param>
    public static AzureBlobStore FromConnectionString(string connectionString, string containerName, AzureBlobStoreOptions? options = null) =>
        FromAccount(StorageAccount.FromConnectionString(connectionString), containerName, options);

    /// <summary>
    /// A store over container <paramref name="containerName"/> of <paramref name="account"/> (a connection string, or a
    /// blob service URI with an identity), with the client options of <see cref="CreateClientOptions"/>.
    /// </summary>
    /// <param name="account">The storage account and how to reach it.</param>
    /// <param name="containerName">The container that holds the objects.</param>
    /// <param name="options">Block and range sizes, buffers in flight and transfer checksums; null takes the defaults.</param>
    public static AzureBlobStore FromAccount(StorageAccount account, string containerName, AzureBlobStoreOptions? options = null) =>
        new(account.BlobService(CreateClientOptions()).GetBlobContainerClient(containerName), options);

    /// <summary>
    /// A store over the one blob that <paramref name="grant"/> (a blob SAS URI from <see cref="GrantWriteAsync"/> or
    /// <see cref="GrantReadAsync"/>) opens, and the blob's key in it. The container is taken to exist: whoever granted made sure.
    /// </summary>
    public static (AzureBlobStore Store, string Key) ForGrant(Uri grant, AzureBlobStoreOptions? options = null)
    {
        var parts = new BlobUriBuilder(grant);
        var key = parts.BlobName;
        parts.BlobName = "";
        var store = new AzureBlobStore(new BlobContainerClient(parts.ToUri(), CreateClientOptions()), options) { _containerReady = 1 };
        return (store, key);
    }

    /// <inheritdoc/>
    /// <remarks>A service SAS signed with the account key when the client has it, else a user-delegation SAS signed with a key
    /// the client's identity obtains (it needs a role that may "generate a user delegation key"). Creates the container first.</remarks>
    public async Task<Uri> GrantWriteAsync(string key, DateTimeOffset expiresOn, CancellationToken cancellationToken = default)
    {
        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        return await GrantAsync(key, BlobSasPermissions.Create | BlobSasPermissions.Write, expiresOn, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public Task<Uri> GrantReadAsync(string key, DateTimeOffset expiresOn, CancellationToken cancellationToken = default) =>
        GrantAsync(key, BlobSasPermissions.Read, expiresOn, cancellationToken);

    private async Task<Uri> GrantAsync(string key, BlobSasPermissions permissions, DateTimeOffset expiresOn, CancellationToken cancellationToken)
    {
        var blob = container.GetBlobClient(StoreKey.Validate(key));
        if (blob.CanGenerateSasUri) return blob.GenerateSasUri(permissions, expiresOn);
        var sas = new BlobSasBuilder(permissions, expiresOn) { BlobContainerName = container.Name, BlobName = key, Resource = "b" };
        var delegation = await _delegationKeys.ForAsync(expiresOn, cancellationToken).ConfigureAwait(false);
        return new BlobUriBuilder(blob.Uri) { Sas = sas.ToSasQueryParameters(delegation, container.AccountName) }.ToUri();
    }

    private async Task EnsureContainerAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _containerReady) == 1) return;
        await container.CreateIfNotExistsAsync(cancellationToken: ct).ConfigureAwait(false);
        Volatile.Write(ref _containerReady, 1);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// The callback's stream is write-only and cannot seek. Content of at most one block goes as one Put Blob request once the
    /// callback returned; larger content is staged in blocks while it is written and appears when the block list is committed.
    /// </remarks>
    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        StoreKey.Validate(key);
        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        var blob = container.GetBlockBlobClient(key);
        await using var upload = new BlockUploadStream(blob, _options, cancellationToken);
        await writeContent(upload, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        await upload.CommitAsync(new BlobHttpHeaders { ContentType = ContentTypeOf(key) }).ConfigureAwait(false);
    }

    /// <summary>JSON documents (manifests) say so, so that browsers and tools show them as JSON; everything else is bytes.</summary>
    private static string ContentTypeOf(string key) =>
        key.EndsWith(".json", StringComparison.Ordinal) ? "application/json" : "application/octet-stream";

    /// <inheritdoc/>
    /// <remarks>
    /// The stream downloads ranges of <see cref="AzureBlobStoreOptions.ReadRangeSize"/> bytes ahead of the reader, at most
    /// <see cref="AzureBlobStoreOptions.MaxRangesInFlight"/> at once.
    /// </remarks>
    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(StoreKey.Validate(key));
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return new PrefetchingBlobReadStream(blob, properties.Value.ContentLength, _options.ReadRangeSize, _options.MaxRangesInFlight, cancellationToken);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new StoreObjectNotFoundException(key, Description);
        }
    }

    /// <inheritdoc/>
    public int PreferredReadBytes => _options.ReadRangeSize;

    /// <inheritdoc/>
    public int PreferredReadsInFlight => _options.MaxRangesInFlight;

    /// <inheritdoc/>
    /// <remarks>One ranged download. Throws <see cref="StoreObjectNotFoundException"/> when the blob is absent and
    /// <see cref="EndOfStreamException"/> when it ends before the range does.</remarks>
    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        if (destination.Length == 0) return;
        var blob = container.GetBlobClient(StoreKey.Validate(key));
        try
        {
            var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(offset, destination.Length) }, cancellationToken).ConfigureAwait(false);
            await using var content = response.Value.Content;
            var done = 0;
            while (done < destination.Length)
            {
                var n = await content.ReadAsync(destination[done..], cancellationToken).ConfigureAwait(false);
                if (n == 0) throw new EndOfStreamException($"'{key}' in {Description} ends before offset {offset + destination.Length}.");
                done += n;
            }
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            throw new StoreObjectNotFoundException(key, Description);
        }
        catch (RequestFailedException e) when (e.Status == 416)
        {
            throw new EndOfStreamException($"'{key}' in {Description} ends before offset {offset + destination.Length}.", e);
        }
    }

    /// <inheritdoc/>
    public async Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(StoreKey.Validate(key));
        try
        {
            var properties = await blob.GetPropertiesAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
            return new StoreEntry(key, properties.Value.ContentLength, properties.Value.LastModified);
        }
        catch (RequestFailedException e) when (e.Status == 404)
        {
            return null;
        }
    }

    /// <inheritdoc/>
    public async IAsyncEnumerable<StoreEntry> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        await EnsureContainerAsync(cancellationToken).ConfigureAwait(false);
        // The service lists in UTF-8 byte order, which is ordinal order for the ASCII keys StoreKey allows.
        await foreach (var item in container.GetBlobsAsync(new GetBlobsOptions { Prefix = prefix }, cancellationToken).ConfigureAwait(false))
        {
            yield return new StoreEntry(item.Name, item.Properties.ContentLength ?? 0, item.Properties.LastModified ?? DateTimeOffset.MinValue);
        }
    }

    /// <inheritdoc/>
    /// <remarks>The blob's snapshots go with it.</remarks>
    public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        var blob = container.GetBlobClient(StoreKey.Validate(key));
        var response = await blob.DeleteIfExistsAsync(DeleteSnapshotsOption.IncludeSnapshots, cancellationToken: cancellationToken).ConfigureAwait(false);
        return response.Value;
    }
}
