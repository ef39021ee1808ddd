using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;
using Checkpointing.Storage;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Checkpointing.Silo;

/// <summary>
/// Part of readiness (<c>/readyz</c>): the storage this silo's grains depend on answers within a short
/// timeout. Each blob container in use (grain state, checkpoints) is probed with a one-blob listing,
/// which a credential scoped to that container (SAS or role) may do; an account-level request would
/// be refused to it. Any HTTP answer below 500 means storage is reachable (a 404 too: the container
/// is created on first write), except 401/403: storage answers but refuses this credential, which
/// would fail every save, so the silo stays not ready and says so. A folder store must exist.
/// Liveness (<c>/healthz</c>) does not depend on any of it.
/// </summary>
public sealed class StorageHealthCheck : IHealthCheck
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private readonly StorageSettings _storage;
    private readonly List<BlobContainerClient> _containers = [];

    public StorageHealthCheck(StorageSettings storage, StorageAccount account)
    {
        _storage = storage;
        var blobs = account.BlobService(new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = Timeout } });
        if (storage.GrainState == "AzureBlob") _containers.Add(blobs.GetBlobContainerClient(storage.GrainStateContainer));
        if (storage.Checkpoints == "AzureBlob") _containers.Add(blobs.GetBlobContainerClient(storage.CheckpointContainer));
    }

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        await ProblemAsync(cancellationToken) is { } problem ? HealthCheckResult.Unhealthy(problem) : HealthCheckResult.Healthy();

    /// <summary>Null when the storage answers, else one line naming what does not.</summary>
    private async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        foreach (var container in _containers)
        {
            if (await ProblemAsync(container, cancellationToken) is { } problem) return problem;
        }
        if (_storage.Checkpoints == "Folder" && !Directory.Exists(_storage.CheckpointFolder))
            return $"storage unreachable: checkpoint folder {Path.GetFullPath(_storage.CheckpointFolder)} does not exist";
        return null;
    }

    private static async Task<string?> ProblemAsync(BlobContainerClient container, CancellationToken cancellationToken)
    {
        var name = container.Uri.GetLeftPart(UriPartial.Path); // never the SAS query
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        try
        {
            await using var pages = container.GetBlobsAsync(new GetBlobsOptions(), timeout.Token).AsPages(pageSizeHint: 1).GetAsyncEnumerator(timeout.Token);
            await pages.MoveNextAsync();
            return null;
        }
        catch (RequestFailedException e) when (e.Status is 401 or 403)
        {
            return $"storage refuses access: blob container {name} answered {e.Status} ({e.ErrorCode}): the credential may not list this container";
        }
        catch (RequestFailedException e) when (e.Status is > 0 and < 500)
        {
            return null;
        }
        // A probe reports whatever else stops the request (refused connection, timeout, 5xx) as the reason.
        catch (Exception e) when (!cancellationToken.IsCancellationRequested)
        {
            var reason = timeout.IsCancellationRequested ? $"no answer within {Timeout.TotalSeconds:0} s" : FirstLine(e.Message);
            return $"storage unreachable: blob container {name}: {reason}";
        }
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();
}
