using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;

namespace Checkpointing.Storage;

/// <summary>
/// User-delegation keys of the identity a container client signs in as, kept for a day and replaced before a grant
/// would outlive the key that signs it: one key request per day, not one per grant.
/// </summary>
internal sealed class DelegationKeys(BlobContainerClient container)
{
    private static readonly TimeSpan Lifetime = TimeSpan.FromDays(1);
    private readonly SemaphoreSlim _gate = new(1, 1);
    private UserDelegationKey? _key;

    /// <summary>A key valid at least until <paramref name="expiresOn"/>.</summary>
    public async Task<UserDelegationKey> ForAsync(DateTimeOffset expiresOn, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (_key is { } key && key.SignedExpiresOn >= expiresOn) return key;
            var service = container.GetParentBlobServiceClient();
            var now = DateTimeOffset.UtcNow;
            var until = expiresOn > now + Lifetime ? expiresOn : now + Lifetime;
            _key = (await service.GetUserDelegationKeyAsync(now.AddMinutes(-5), until, cancellationToken).ConfigureAwait(false)).Value;
            return _key;
        }
        finally { _gate.Release(); }
    }
}
