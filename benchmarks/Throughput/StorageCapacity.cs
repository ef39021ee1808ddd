using System.Diagnostics;
using Azure.Storage.Blobs;
using Checkpointing.Storage;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// What the storage itself serves of the commit benchmark's request mix: the requests one commit cost in the timed window (by
/// method, PUTs of their average size), sent straight with the Azure SDK (no silo, no protocol), all of a commit's requests at
/// once and as many commits in flight as the benchmark had runs. Commits per second at that rate is the ceiling the control
/// plane is compared with (<c>storage_capacity_ratio</c>).
/// </summary>
public sealed class StorageCapacity(string connectionString)
{
    /// <summary>Sends <paramref name="commits"/> commits' worth of <paramref name="perCommit"/> (requests in the window ÷ commits in it) and returns commits per second.</summary>
    public async Task<double> CommitsPerSecondAsync(RequestCounts window, int windowCommits, int commits, int concurrency, CancellationToken cancellationToken)
    {
        var container = new BlobServiceClient(connectionString, AzureBlobStore.CreateClientOptions()).GetBlobContainerClient($"capacity-{Guid.NewGuid():N}");
        await container.CreateIfNotExistsAsync(cancellationToken: cancellationToken);
        try
        {
            double Rate(long count) => (double)count / windowCommits;
            var (puts, gets, heads, deletes) = (Rate(window.Put), Rate(window.Get), Rate(window.Head), Rate(window.Delete));
            var body = BinaryData.FromBytes(Random.Shared.GetItems<byte>(new byte[256], (int)Math.Max(1, window.Put == 0 ? 1 : window.PutBytes / window.Put)));
            var probe = container.GetBlobClient("probe");
            await probe.UploadAsync(body, overwrite: true, cancellationToken);
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, commits), new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = cancellationToken }, async (i, token) =>
            {
                // Commit i sends its share of each kind, so that fractional rates (0.5 deletes per commit) come out right over the run.
                int Share(double rate) => (int)(Math.Floor((i + 1) * rate) - Math.Floor(i * rate));
                var requests = new List<Task>();
                for (var p = 0; p < Share(puts); p++) requests.Add(container.GetBlobClient($"c{i}/p{p}").UploadAsync(body, overwrite: true, token));
                for (var g = 0; g < Share(gets); g++) requests.Add(probe.DownloadContentAsync(token));
                for (var h = 0; h < Share(heads); h++) requests.Add(probe.GetPropertiesAsync(cancellationToken: token));
                for (var d = 0; d < Share(deletes); d++) requests.Add(container.GetBlobClient($"c{Math.Max(0, i - concurrency)}/p{d}").DeleteIfExistsAsync(cancellationToken: token));
                await Task.WhenAll(requests);
            });
            return commits / clock.Elapsed.TotalSeconds;
        }
        finally
        {
            await container.DeleteIfExistsAsync(cancellationToken: CancellationToken.None);
        }
    }
}
