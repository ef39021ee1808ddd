using System.Diagnostics;
using System.Text;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Processes;
using Checkpointing.TestSupport;
using Xunit.Abstractions;

namespace Checkpointing.Storage.Tests;

/// <summary>
/// The store's blob path against the raw SDK on the same Azurite and client options, for several
/// concurrency settings: within each repetition the two run back to back (A/B interleaved), so drift
/// of this shared machine hits both. Prints min and median seconds and the ratio ours / SDK; the
/// table also goes to $BLOB_BENCH_OUT when set. Run with <c>--filter Category=Slow</c>.
/// </summary>
[Trait("Category", "Slow")]
public sealed class BlobThroughputTests(ITestOutputHelper output)
{
    private const int ObjectSize = 256 << 20;
    private const int Repetitions = 3;
    private static readonly int[] Sizes = [4 << 20, 8 << 20, 16 << 20];
    private static readonly int[] InFlight = [4, 8];

    [Fact]
    public async Task Writes_and_reads_compared_with_the_raw_sdk()
    {
        var data = new byte[ObjectSize];
        new Random(1).NextBytes(data);
        var table = new StringBuilder("| op | size MiB | in flight | ours min / median s | SDK min / median s | ratio (median) |\n|---|---|---|---|---|---|\n");

        await using (var azurite = await RepoPaths.StartAzurite())
        {
            var container = await ContainerAsync(azurite);
            var raw = container.GetBlobClient("raw");
            foreach (var size in Sizes)
            foreach (var inFlight in InFlight)
            {
                var store = new AzureBlobStore(container, new AzureBlobStoreOptions { BlockSize = size, MaxBlocksInFlight = inFlight });
                var (ours, sdk) = await InterleavedAsync(
                    () => store.WriteAsync("ours", (s, _) => { s.Write(data); return Task.CompletedTask; }),
                    () => raw.UploadAsync(new BinaryData(data), overwrite: true));
                Row(table, "write", size, inFlight, ours, sdk);
            }
        }

        await using (var azurite = await RepoPaths.StartAzurite())
        {
            var container = await ContainerAsync(azurite);
            var raw = container.GetBlobClient("obj");
            await raw.UploadAsync(new BinaryData(data));
            var destination = new byte[ObjectSize];
            foreach (var size in Sizes)
            foreach (var inFlight in InFlight)
            {
                var store = new AzureBlobStore(container, new AzureBlobStoreOptions { ReadRangeSize = size, MaxRangesInFlight = inFlight });
                var (ours, sdk) = await InterleavedAsync(
                    () => ReadToEndAsync(store, "obj", destination),
                    async () => Assert.Equal(ObjectSize, (await raw.DownloadContentAsync()).Value.Content.ToMemory().Length));
                Assert.Equal(data, destination);
                Row(table, "read", size, inFlight, ours, sdk);
            }
        }

        output.WriteLine(table.ToString());
        if (Environment.GetEnvironmentVariable("BLOB_BENCH_OUT") is { Length: > 0 } path) await File.WriteAllTextAsync(path, table.ToString());
    }

    private static async Task<BlobContainerClient> ContainerAsync(Azurite azurite)
    {
        var container = new BlobServiceClient(azurite.ConnectionString, AzureBlobStore.CreateClientOptions()).GetBlobContainerClient("bench");
        await container.CreateIfNotExistsAsync();
        return container;
    }

    private static async Task ReadToEndAsync(ICheckpointStore store, string key, byte[] destination)
    {
        await using var read = await store.OpenReadAsync(key);
        var done = 0;
        for (int n; (n = await read.ReadAsync(destination.AsMemory(done))) > 0;) done += n;
        Assert.Equal(destination.Length, done);
    }

    private static async Task<(double[] Ours, double[] Sdk)> InterleavedAsync(Func<Task> ours, Func<Task> sdk)
    {
        var a = new double[Repetitions];
        var b = new double[Repetitions];
        for (var i = 0; i < Repetitions; i++)
        {
            a[i] = await TimeAsync(ours);
            b[i] = await TimeAsync(sdk);
        }
        return (a, b);
    }

    private static async Task<double> TimeAsync(Func<Task> action)
    {
        GC.Collect();
        var watch = Stopwatch.StartNew();
        await action();
        return watch.Elapsed.TotalSeconds;
    }

    private static void Row(StringBuilder table, string op, int size, int inFlight, double[] ours, double[] sdk) =>
        table.AppendLine($"| {op} | {size >> 20} | {inFlight} | {ours.Min():F2} / {Median(ours):F2} | {sdk.Min():F2} / {Median(sdk):F2} | {Median(ours) / Median(sdk):F2} |");

    private static double Median(double[] values) => values.Order().ElementAt(values.Length / 2);
}
