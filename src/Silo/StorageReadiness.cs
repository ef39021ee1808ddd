using Azure.Storage.Blobs;

namespace Checkpointing.Silo;

/// <summary>
/// Readiness (<c>/readyz</c>): the storage this silo's grains depend on answers within a short
/// timeout — the blob service (grain state, checkpoint blobs) with one cheap service-properties
/// request, or the checkpoint folder. Liveness (<c>/healthz</c>) does not depend on it.
/// </summary>
public sealed class StorageReadiness
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(3);

    private readonly StorageSettings _storage;
    private readonly BlobServiceClient? _blobs;

    public StorageReadiness(StorageSettings storage)
    {
        _storage = storage;
        if (storage.GrainState == "AzureBlob" || storage.Checkpoints == "AzureBlob")
        {
            var options = new BlobClientOptions { Retry = { MaxRetries = 0, NetworkTimeout = Timeout } };
            _blobs = new BlobServiceClient(storage.ConnectionString, options);
        }
    }

    /// <summary>Null when the storage answers, else one line naming what does not.</summary>
    public async Task<string?> ProblemAsync(CancellationToken cancellationToken)
    {
        if (_blobs is not null)
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(Timeout);
            try
            {
                await _blobs.GetPropertiesAsync(timeout.Token);
            }
            // A probe reports whatever stops the request (refused connection, timeout, auth, 5xx) as the reason.
            catch (Exception e) when (!cancellationToken.IsCancellationRequested)
            {
                var reason = timeout.IsCancellationRequested ? $"no answer within {Timeout.TotalSeconds:0} s" : FirstLine(e.Message);
                return $"storage unreachable: blob service {_blobs.Uri}: {reason}";
            }
        }
        if (_storage.Checkpoints == "Folder" && !Directory.Exists(_storage.CheckpointFolder))
            return $"storage unreachable: checkpoint folder {Path.GetFullPath(_storage.CheckpointFolder)} does not exist";
        return null;
    }

    private static string FirstLine(string message) => message.Split('\n', 2)[0].Trim();
}
