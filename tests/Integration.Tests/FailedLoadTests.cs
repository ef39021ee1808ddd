using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Checkpointing.Processes;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using Orleans.TestingHost;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Integration.Tests;

/// <summary>Azurite, a test cluster on a blob store in it, and a test cluster on a local folder store.</summary>
public sealed class FailedLoadBed : IAsyncLifetime
{
    private Azurite? _azurite;
    private readonly string _root = Directory.CreateTempSubdirectory("failed-load-").FullName;

    public InProcessTestCluster BlobCluster { get; private set; } = null!;
    public InProcessTestCluster FolderCluster { get; private set; } = null!;
    public ICheckpointStore BlobStore { get; private set; } = null!;
    public ICheckpointStore FolderStore { get; private set; } = null!;
    public string LocalRoot => Path.Combine(_root, "local");

    public async Task InitializeAsync()
    {
        _azurite = await RepoPaths.StartAzurite();
        BlobStore = new AzureBlobStore(new BlobServiceClient(_azurite.ConnectionString).GetBlobContainerClient("checkpoints"),
            new AzureBlobStoreOptions { ReadRangeSize = (4 << 10) + 3, MaxRangesInFlight = 3 }); // many ranges a shard, straddling tensors
        BlobCluster = await TestClusters.StartAsync(BlobStore);
        FolderStore = new FileSystemStore(Path.Combine(_root, "cluster"));
        FolderCluster = await TestClusters.StartAsync(FolderStore);
    }

    public async Task DisposeAsync()
    {
        if (FolderCluster is not null) await FolderCluster.DisposeAsync();
        if (BlobCluster is not null) await BlobCluster.DisposeAsync();
        if (_azurite is not null) await _azurite.DisposeAsync();
        Directory.Delete(_root, recursive: true);
    }
}

/// <summary>
/// A failed load leaves the model as it was, whichever request fails. Each load path (whole, an incremental checkpoint reading
/// shards of an earlier one, tensors saved in slices and assembled whole, a load into another layout) in each mode (a local
/// folder, a cluster run on a folder store, a cluster run on blob storage) is repeated with request 1, 2, 3, ... of the load
/// failing until a load runs past its last request: after every failing one the model must be bit for bit what it was, and
/// the load that no failure reached must give exactly the saved values.
/// </summary>
public sealed class FailedLoadTests(FailedLoadBed bed) : IClassFixture<FailedLoadBed>
{
    private const int World = 2;

    private static readonly Dictionary<string, long[]> GlobalShapes = new(StringComparer.Ordinal)
    {
        ["0.weight"] = [32, 16], ["0.bias"] = [32], ["1.weight"] = [8, 32], ["1.bias"] = [8],
    };

    /// <summary>Saving ranks: the first layer by rows, the second by columns, its bias whole.</summary>
    private static TensorLayout? SaveLayout(string name, int rank) => name switch
    {
        "0.weight" or "0.bias" => TensorLayout.Split(GlobalShapes[name], 0, rank, World),
        "1.weight" => TensorLayout.Split(GlobalShapes[name], 1, rank, World),
        _ => null,
    };

    /// <summary>A loading rank split the other way: the first layer by columns with its bias whole, the second by rows.</summary>
    private static TensorLayout? LoadLayout(string name) => name switch
    {
        "0.weight" => TensorLayout.Split(GlobalShapes[name], 1, 0, World),
        "1.weight" or "1.bias" => TensorLayout.Split(GlobalShapes[name], 0, 0, World),
        _ => null,
    };

    /// <summary>A two-layer model holding the parts of the global tensors that <paramref name="layout"/> names (all when null).</summary>
    private static Sequential Model(Func<string, TensorLayout?> layout, long seed)
    {
        long[] Shape(string name) => layout(name)?.LocalShape ?? GlobalShapes[name];
        return SeededWeights.Fill(nn.Sequential(nn.Linear(Shape("0.weight")[1], Shape("0.weight")[0]), nn.Linear(Shape("1.weight")[1], Shape("1.weight")[0])), seed);
    }

    /// <summary>The slices of <paramref name="global"/> that <paramref name="layout"/> names, as a model.</summary>
    private static Sequential SlicesOf(Sequential global, Func<string, TensorLayout?> layout)
    {
        var model = Model(layout, seed: 0);
        var globals = global.state_dict();
        using var noGrad = torch.no_grad();
        foreach (var (name, tensor) in model.state_dict())
        {
            using var slice = layout(name) is { } part ? TorchTensors.SliceOf(globals[name], part) : globals[name].detach();
            tensor.copy_(slice);
        }
        return model;
    }

    private static Func<string, TensorLayout?> Whole => _ => null;

    /// <summary>Loads of a local save folder, through the checkpointer's native load path as for a folder path, with the folder's store wrapped.</summary>
    private sealed class FolderLoads(ICheckpointStore store, string folder) : ICheckpointBackend
    {
        public string PathOf(string name) => Path.Combine(folder, name);

        public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
            Task.FromResult<(ICheckpointStore, string)?>((store, Path.GetFileName(path)));

        public Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, Formats.NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null) =>
            throw new NotSupportedException("this backend only loads");

        public Task<string?> GetLastAsync(CancellationToken cancellationToken) => Task.FromResult<string?>(null);
        public Task TagLastAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException("this backend only loads");
        public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<string>>([]);
        public bool AppliesRetention => false;
        public bool Incremental => false;
        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => throw new NotSupportedException("this backend only loads");
    }

    /// <summary>Where the checkpoint was saved, and how a loading checkpointer reaches it through a given store.</summary>
    private sealed record Saved(string Path, ICheckpointStore Store, Func<nn.Module, ICheckpointStore, Func<string, TensorLayout?>?, Checkpointer> Loader);

    private static Dictionary<string, object?> Iteration(long iteration) => new() { ["iteration"] = iteration };

    /// <summary>Saves checkpoint model_0000009 of <paramref name="global"/> along <paramref name="path"/> (model_0000004 first for "incremental").</summary>
    private async Task<Saved> SaveAsync(string mode, string path, Sequential global)
    {
        var name = $"{mode}-{path}";
        if (mode == "local")
        {
            var folder = Path.Combine(bed.LocalRoot, name);
            var saver = new Checkpointer(global, folder, options: new() { Incremental = path == "incremental" }) { WriteOptions = new() { ShardCount = 2 } };
            if (path == "incremental") await SaveIncrementallyAsync([global], [saver]);
            else await saver.SaveAsync("model_0000009", Iteration(9));
            return new Saved(Path.Combine(folder, "model_0000009"), new FileSystemStore(folder),
                (model, store, layouts) => new Checkpointer(model, new FolderLoads(store, folder)) { ModelLayouts = layouts });
        }

        var (cluster, clusterStore) = mode == "cluster-blob" ? (bed.BlobCluster, bed.BlobStore) : (bed.FolderCluster, bed.FolderStore);
        var run = await ClusterRanks.CreateRunAsync(cluster.Client, name, new PeriodicPolicy(10));
        var grain = cluster.Client.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        var sliced = path is "sharded" or "resharded";
        var ranks = Enumerable.Range(0, World).Select(rank => sliced ? SlicesOf(global, n => SaveLayout(n, rank)) : SlicesOf(global, Whole)).ToList();
        var savers = Enumerable.Range(0, World).Select(rank => new Checkpointer(ranks[rank], new ClusterBackend(cluster.Client, run, clusterStore, rank, World, epoch) { Incremental = path == "incremental" })
        {
            ModelLayouts = sliced ? n => SaveLayout(n, rank) : null,
        }).ToList();
        if (path == "incremental") await SaveIncrementallyAsync(ranks, savers);
        else await Task.WhenAll(savers.Select(s => s.SaveAsync("model_0000009", Iteration(9))));
        if (path == "incremental") CopyChangedBias(ranks[0], global);
        var loadEpoch = await grain.StartAttempt();
        return new Saved($"{ClusterBackend.Scheme}{run.Key}/model_0000009", clusterStore,
            (model, store, layouts) => new Checkpointer(model, new ClusterBackend(cluster.Client, run, store, 0, 1, loadEpoch)) { ModelLayouts = layouts });
    }

    /// <summary>model_0000004, then model_0000009 with only the last bias changed: the second reuses every other tensor's bytes from the first.</summary>
    private static async Task SaveIncrementallyAsync(IReadOnlyList<Sequential> models, IReadOnlyList<Checkpointer> savers)
    {
        await Task.WhenAll(savers.Select(s => s.SaveAsync("model_0000004", Iteration(4))));
        using (torch.no_grad())
        {
            foreach (var model in models) model.state_dict()["1.bias"].add_(1.0);
        }
        await Task.WhenAll(savers.Select(s => s.SaveAsync("model_0000009", Iteration(9))));
    }

    private static void CopyChangedBias(Sequential from, Sequential into)
    {
        using var noGrad = torch.no_grad();
        into.state_dict()["1.bias"].copy_(from.state_dict()["1.bias"]);
    }

    [Theory]
    [InlineData("local", "whole")]
    [InlineData("local", "incremental")]
    [InlineData("local", "resharded")]
    [InlineData("cluster-folder", "whole")]
    [InlineData("cluster-folder", "incremental")]
    [InlineData("cluster-folder", "sharded")]
    [InlineData("cluster-folder", "resharded")]
    [InlineData("cluster-blob", "whole")]
    [InlineData("cluster-blob", "incremental")]
    [InlineData("cluster-blob", "sharded")]
    [InlineData("cluster-blob", "resharded")]
    public async Task A_load_failing_at_any_request_leaves_the_model_unchanged_and_a_load_no_failure_reaches_is_bit_exact(string mode, string path)
    {
        TestTenancy.ActAs("it");
        var global = Model(Whole, seed: 31);
        var saved = await SaveAsync(mode, path, global); // a local incremental save changes global itself: expected is taken after
        Func<string, TensorLayout?>? layouts = path == "resharded" ? LoadLayout : null;
        var expected = SeededWeights.Snapshot(SlicesOf(global, layouts ?? Whole));
        var target = Model(layouts ?? Whole, seed: 32);
        var before = SeededWeights.Snapshot(target);

        var failed = 0;
        for (var failAt = 1; ; failAt++)
        {
            Assert.True(failAt < 10_000, "the load never ran past its last request");
            var store = new FailNthRequestStore(saved.Store, failAt);
            var error = await Record.ExceptionAsync(() => saved.Loader(target, store, layouts).LoadAsync(saved.Path));
            if (error is null)
            {
                // A load that succeeds, whether or not a failure was injected on its way (a retried read), is exact.
                Assert.Empty(SeededWeights.ChangedSince(target, expected));
                if (!store.Failed) break;
                Restore(target, before);
                continue;
            }
            Assert.True(store.Failed, $"the load failed with no injected failure: {error}");
            Assert.True(IsInjected(error), $"request {failAt} failed the load with another error: {error}");
            Assert.True(SeededWeights.ChangedSince(target, before) is [], $"a load whose request {failAt} failed changed {string.Join(", ", SeededWeights.ChangedSince(target, before))}");
            failed++;
        }
        Assert.True(failed >= 3, $"only {failed} requests of the load could fail");
    }

    private static bool IsInjected(Exception? error) => error switch
    {
        null => false,
        IOException io when io.Message.StartsWith("injected failure", StringComparison.Ordinal) => true,
        AggregateException all => all.InnerExceptions.Any(IsInjected),
        _ => IsInjected(error.InnerException),
    };

    private static void Restore(nn.Module module, IReadOnlyDictionary<string, byte[]> snapshot)
    {
        foreach (var (name, tensor) in module.state_dict()) snapshot[name].CopyTo(tensor.bytes);
    }
}
