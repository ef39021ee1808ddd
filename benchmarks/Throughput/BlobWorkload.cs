using Azure;
using Azure.Storage.Blobs.Models;
using Azure.Storage.Blobs.Specialized;
using Checkpointing.Core;
using Checkpointing.Processes;
using Checkpointing.Storage;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// The blob half of <c>ckpt-bench io</c>: our save and load of the workload's model through a blob
/// store on a local Azurite, against the Azure SDK's own parallel upload and download of the same
/// number of bytes with the same block size and concurrency (bare block and range requests), from and into pre-touched memory.
/// </summary>
internal sealed class BlobWorkload : IAsyncDisposable
{
    private const string Name = "bench";
    private const string RawBlob = "raw/state.bin";
    private readonly Azurite _azurite;
    private readonly AzureBlobStore _store;
    private readonly AzureBlobStoreOptions _options;
    private readonly IoWorkload _workload;
    private readonly Checkpointer _checkpointer;

    private BlobWorkload(Azurite azurite, AzureBlobStore store, AzureBlobStoreOptions options, IoWorkload workload)
    {
        _azurite = azurite;
        _store = store;
        _options = options;
        _workload = workload;
        _checkpointer = new Checkpointer(workload.Model, new StoreBackend(store)) { WriteOptions = workload.WriteOptions };
    }

    /// <param name="writeFirst">Write our checkpoint and the raw blob before timing, for load rows that run without the save rows (Azurite keeps everything in memory: no more than needed).</param>
    public static async Task<BlobWorkload> StartAsync(string repo, IoWorkload workload, bool writeFirst, Action<string> say)
    {
        say("starting Azurite (127.0.0.1, in memory)");
        var azurite = await Azurite.StartAsync(repo);
        var options = new AzureBlobStoreOptions();
        var store = AzureBlobStore.FromConnectionString(azurite.ConnectionString, "bench", options);
        await store.Container.CreateIfNotExistsAsync();
        workload.CopyIntoBuffer();
        say($"blob: blocks of {options.BlockSize >> 20} MiB, {options.MaxBlocksInFlight} in flight; reads of {options.ReadRangeSize >> 20} MiB, {options.MaxRangesInFlight} in flight");
        var blob = new BlobWorkload(azurite, store, options, workload);
        if (writeFirst)
        {
            await blob.SaveAsync();
            await blob.SdkUploadAsync();
        }
        return blob;
    }

    public Task<double> SaveAsync() => InterleavedPairs.Time(() => _checkpointer.SaveAsync(Name));

    public Task<double> LoadAsync() => InterleavedPairs.Time(() => _checkpointer.LoadAsync(_checkpointer.Backend!.PathOf(Name)));

    /// <summary>Blocks of the same size staged from memory with the same concurrency, then one block list: the SDK's own floor for our upload.</summary>
    public Task<double> SdkUploadAsync() => InterleavedPairs.Time(async () =>
    {
        var blob = _store.Container.GetBlockBlobClient(RawBlob);
        var blocks = Slices(_options.BlockSize).Select((slice, i) => (slice.Offset, slice.Length, Id: Convert.ToBase64String(BitConverter.GetBytes(i)))).ToList();
        await Parallel.ForEachAsync(blocks, new ParallelOptions { MaxDegreeOfParallelism = _options.MaxBlocksInFlight }, async (block, ct) =>
        {
            await using var content = _workload.BufferStream(FileAccess.Read, block.Offset, block.Length);
            await blob.StageBlockAsync(block.Id, content, cancellationToken: ct);
        });
        await blob.CommitBlockListAsync(blocks.Select(b => b.Id));
    });

    /// <summary>Ranges of the same size downloaded with the same concurrency straight into pre-touched memory: the SDK's own floor for our load.</summary>
    public Task<double> SdkDownloadAsync() => InterleavedPairs.Time(() => DownloadRangesAsync(range => _workload.BufferStream(FileAccess.Write, range.Offset, range.Length)));

    /// <summary>
    /// The same download into fresh memory (native, so it is untouched pages as our load's new tensors are): the floor for a
    /// load that, like ours, must not write into the model before the checkpoint verified.
    /// </summary>
    public Task<double> SdkDownloadFreshAsync() => InterleavedPairs.Time(async () =>
    {
        using var fresh = FreshMemory.Allocate((nuint)_workload.StateBytes);
        await DownloadRangesAsync(range => fresh.Stream(range.Offset, range.Length));
    });

    /// <summary>The raw blob's ranges of <see cref="AzureBlobStoreOptions.ReadRangeSize"/>, <see cref="AzureBlobStoreOptions.MaxRangesInFlight"/> at once, each into its stream.</summary>
    private Task DownloadRangesAsync(Func<(long Offset, int Length), Stream> destinationOf)
    {
        var blob = _store.Container.GetBlobClient(RawBlob);
        return Parallel.ForEachAsync(Slices(_options.ReadRangeSize), new ParallelOptions { MaxDegreeOfParallelism = _options.MaxRangesInFlight }, async (range, ct) =>
        {
            var response = await blob.DownloadStreamingAsync(new BlobDownloadOptions { Range = new HttpRange(range.Offset, range.Length) }, ct);
            await using var content = response.Value.Content;
            await using var destination = destinationOf(range);
            await content.CopyToAsync(destination, ct);
        });
    }

    private IEnumerable<(long Offset, int Length)> Slices(int size)
    {
        for (long at = 0; at < _workload.StateBytes; at += size) yield return (at, (int)Math.Min(size, _workload.StateBytes - at));
    }

    public ValueTask DisposeAsync() => _azurite.DisposeAsync();
}
