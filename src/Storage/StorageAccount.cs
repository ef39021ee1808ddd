using Azure.Core;
using Azure.Storage.Blobs;

namespace Checkpointing.Storage;

/// <summary>
/// How a process reaches its Azure Storage account: a connection string (Azurite and development; it carries the
/// account key), or the blob service URI with a <see cref="TokenCredential"/> (a managed or workload identity in a fleet:
/// no key anywhere, access by role assignment). The one place that decides which, for the silo, the agents and ckpt.
/// </summary>
public sealed class StorageAccount
{
    private readonly string? _connectionString;
    private readonly Uri? _blobServiceUri;
    private readonly TokenCredential? _credential;

    private StorageAccount(string? connectionString, Uri? blobServiceUri, TokenCredential? credential) =>
        (_connectionString, _blobServiceUri, _credential) = (connectionString, blobServiceUri, credential);

    /// <summary>The account a connection string names (with its key or a SAS).</summary>
    public static StorageAccount FromConnectionString(string connectionString) =>
        new(string.IsNullOrWhiteSpace(connectionString) ? throw new ArgumentException("The storage connection string is empty.", nameof(connectionString)) : connectionString, null, null);

    /// <summary>The account whose blob service is <paramref name="blobServiceUri"/> (https://ACCOUNT.blob.core.windows.net), reached as <paramref name="credential"/>.</summary>
    public static StorageAccount FromIdentity(Uri blobServiceUri, TokenCredential credential)
    {
        if (blobServiceUri.Scheme != Uri.UriSchemeHttps) throw new ArgumentException($"A token is sent over https only; {blobServiceUri} is not https.", nameof(blobServiceUri));
        return new(null, blobServiceUri, credential);
    }

    /// <summary>
    /// What a user gives on a command line or in an environment variable: an https URI is the blob service reached with
    /// <paramref name="credential"/> (created only then), anything else is a connection string.
    /// </summary>
    public static StorageAccount Parse(string value, Func<TokenCredential> credential) =>
        Uri.TryCreate(value, UriKind.Absolute, out var uri) && uri.Scheme == Uri.UriSchemeHttps ? FromIdentity(uri, credential()) : FromConnectionString(value);

    /// <summary>True when requests carry tokens of a <see cref="TokenCredential"/> rather than the account key.</summary>
    public bool UsesIdentity => _credential is not null;

    /// <summary>The credential of an identity account; null for a connection string.</summary>
    public TokenCredential? Credential => _credential;

    /// <summary>A client of the account's blob service with <paramref name="options"/>.</summary>
    public BlobServiceClient BlobService(BlobClientOptions options) =>
        _credential is null ? new BlobServiceClient(_connectionString, options) : new BlobServiceClient(_blobServiceUri, _credential, options);
}
