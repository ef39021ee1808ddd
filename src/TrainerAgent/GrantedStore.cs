using System.Collections.Concurrent;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// A rank's store when its process holds no storage credential: every object it writes or reads is opened by access
/// its run grain grants (<see cref="ICheckpointProtocol.GrantShardWrite"/>, <see cref="ICheckpointProtocol.GrantCheckpointRead"/>):
/// the shard of its current attempt, the objects of committed checkpoints of its run. Nothing it holds opens another
/// run's or tenant's objects. Listing and deleting belong to the run grain and are refused here.
/// </summary>
/// <param name="grain">The run's grain; its calls carry the rank's tenant token.</param>
/// <param name="rank">This rank, for its write grant.</param>
/// <param name="epoch">The job attempt, for its write grant.</param>
public sealed class GrantedStore(ITrainingRunGrain grain, int rank, long epoch) : ICheckpointStore
{
    /// <summary>Read access is asked again this long before it would expire.</summary>
    private static readonly TimeSpan RenewalMargin = TimeSpan.FromMinutes(5);

    private readonly ConcurrentDictionary<string, (StoreGrant Grant, AzureBlobStore Store, string Key)> _reads = new(StringComparer.Ordinal);

    /// <inheritdoc/>
    public string Description => $"objects granted by run grain {grain.GetPrimaryKeyString()}";

    /// <inheritdoc/>
    /// <remarks>Only the shard of this rank in the current attempt can be written: its key names the checkpoint and the attempt.</remarks>
    public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
    {
        var (folder, file) = StoreLayout.SplitFileKey(key);
        var attempt = StoreLayout.AttemptOf(file) ?? throw new NotSupportedException($"{Description} writes only shards of a pending attempt, not {key}.");
        var grant = await grain.GrantShardWrite(StoreLayout.NameOf(folder), attempt, rank, epoch).ConfigureAwait(false) ?? throw NoGrants();
        if (grant.Key != key) throw new InvalidOperationException($"The run grain granted {grant.Key}, not {key}.");
        var (store, blob) = AzureBlobStore.ForGrant(grant.Access);
        await store.WriteAsync(blob, writeContent, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
    {
        var (store, blob) = await ReadAccessAsync(key, cancellationToken).ConfigureAwait(false) ?? throw new StoreObjectNotFoundException(key, Description);
        return await store.OpenReadAsync(blob, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        var (store, blob) = await ReadAccessAsync(key, cancellationToken).ConfigureAwait(false) ?? throw new StoreObjectNotFoundException(key, Description);
        await store.ReadRangeAsync(blob, offset, destination, cancellationToken).ConfigureAwait(false);
    }

    /// <inheritdoc/>
    /// <remarks>An object that is no part of a committed checkpoint of the run is absent (null), as it is to this rank.</remarks>
    public async Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) =>
        await ReadAccessAsync(key, cancellationToken).ConfigureAwait(false) is var (store, blob) ? await store.GetEntryAsync(blob, cancellationToken).ConfigureAwait(false) : null;

    /// <inheritdoc/>
    public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException($"{Description} lists nothing: the run grain holds the catalog.");

    /// <inheritdoc/>
    public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) =>
        throw new NotSupportedException($"{Description} deletes nothing: the run grain collects its run's objects.");

    /// <summary>The store and blob that read <paramref name="key"/>, asking the grain for its checkpoint's objects when needed; null when not granted.</summary>
    private async Task<(AzureBlobStore Store, string Key)?> ReadAccessAsync(string key, CancellationToken cancellationToken)
    {
        if (_reads.TryGetValue(key, out var held) && held.Grant.ExpiresOn - RenewalMargin > DateTimeOffset.UtcNow) return (held.Store, held.Key);
        cancellationToken.ThrowIfCancellationRequested();
        var (folder, _) = StoreLayout.SplitFileKey(key);
        IReadOnlyList<StoreGrant> grants;
        try { grants = await grain.GrantCheckpointRead(StoreLayout.NameOf(folder)).ConfigureAwait(false); }
        catch (RunRefusedException) { return null; } // not a committed checkpoint of this run
        if (grants.Count == 0) throw NoGrants();
        foreach (var grant in grants)
        {
            var (store, blob) = AzureBlobStore.ForGrant(grant.Access);
            _reads[grant.Key] = (grant, store, blob);
        }
        return _reads.TryGetValue(key, out held) ? (held.Store, held.Key) : null;
    }

    private static InvalidOperationException NoGrants() =>
        new("The silo's checkpoint store grants no access (it is not Azure Blob storage): give this rank a store of its own (CKPT_STORAGE or Checkpointing:Store).");
}
