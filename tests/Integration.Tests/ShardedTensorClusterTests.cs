using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.Core;
using Checkpointing.TrainerAgent;
using Orleans.TestingHost;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Integration.Tests;

/// <summary>
/// Issue 11: a tensor-parallel model held by 4 ranks (fc1 split by output rows, fc2 by input columns, fc2's bias
/// replicated), each with its Adam state, is saved by the ranks together and loaded by 3 ranks split the other way
/// (fc1 by columns, fc2 by rows) and by 1 rank whole. Every element of the weights and of Adam's moments must equal
/// the matching element of one unsharded model trained the same way, and each loading rank reads about its slices' bytes.
/// </summary>
[Collection(nameof(Cluster))]
public sealed class ShardedTensorClusterTests(TwoSiloCluster fixture)
{
    private static readonly Dictionary<string, long[]> GlobalShapes = new(StringComparer.Ordinal)
    {
        ["0.weight"] = [64, 16], ["0.bias"] = [64], ["1.weight"] = [8, 64], ["1.bias"] = [8],
    };

    /// <summary>Saving ranks: fc1 by rows (dimension 0 of weight and bias), fc2 by columns (dimension 1), fc2's bias whole.</summary>
    private static TensorLayout? SaveLayout(string name, int rank, int world) => name switch
    {
        "0.weight" or "0.bias" => TensorLayout.Split(GlobalShapes[name], 0, rank, world),
        "1.weight" => TensorLayout.Split(GlobalShapes[name], 1, rank, world),
        _ => null,
    };

    /// <summary>Loading ranks split the other way: fc1 by columns with its bias whole, fc2 by rows.</summary>
    private static TensorLayout? LoadLayout(string name, int rank, int world) => name switch
    {
        "0.weight" => TensorLayout.Split(GlobalShapes[name], 1, rank, world),
        "1.weight" or "1.bias" => TensorLayout.Split(GlobalShapes[name], 0, rank, world),
        _ => null,
    };

    private sealed record Rank(Sequential Model, optim.Optimizer Adam, Checkpointer Checkpointer);

    [Fact]
    public async Task Four_ranks_save_slices_and_three_ranks_split_the_other_way_and_one_whole_rank_load_them_bit_exact()
    {
        TestTenancy.ActAs("it");
        await SaveWithFourRanksAndLoadAsync(fixture.Client, fixture.Store, "tp-folder", static (store, _) => store);
    }

    [Fact]
    public async Task From_blob_storage_each_loading_rank_downloads_about_the_bytes_of_its_slices()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var blobs = new AzureBlobStore(new BlobServiceClient(azurite.ConnectionString).GetBlobContainerClient("checkpoints"));
        await using InProcessTestCluster cluster = await TestClusters.StartAsync(blobs);
        TestTenancy.ActAs("it");
        var counters = new List<(ReadCountingStore Store, LoadStatistics Statistics)>();
        await SaveWithFourRanksAndLoadAsync(cluster.Client, blobs, "tp-blob", (store, statistics) =>
        {
            var counting = new ReadCountingStore(store);
            counters.Add((counting, statistics));
            return counting;
        });
        // The loading ranks' stores: each downloaded its slices' bytes (within 10%) plus the manifest and shard headers.
        var manifest = await NativeCheckpointReader.ReadManifestAsync(blobs, "tenants/it/runs/tp-blob/model_0000009");
        var overhead = (long)(await blobs.GetEntryAsync("tenants/it/runs/tp-blob/model_0000009/manifest.json"))!.Length + manifest.Shards.Count * 4096;
        Assert.Equal(4, counters.Count);
        foreach (var (counting, statistics) in counters.Take(3)) // the whole rank (last) verifies every shard first, then reads the sharded tensors
        {
            Assert.True(counting.BytesServed <= 1.1 * statistics.BytesNeeded + overhead,
                $"a rank downloaded {counting.BytesServed} bytes for {statistics.BytesNeeded} needed (+{overhead} manifest and headers allowed)");
        }
    }

    /// <summary>
    /// Issues 11 and 12 together: incremental saves of sharded tensors reuse each unchanged slice (a chunk with the same key,
    /// hash, dtype and shape in the run's last checkpoint), and the loads follow the references.
    /// </summary>
    [Fact]
    public async Task An_incremental_save_of_sharded_tensors_writes_only_the_slices_that_changed()
    {
        TestTenancy.ActAs("it");
        var grains = fixture.Client;
        var run = await ClusterRanks.CreateRunAsync(grains, "tp-incremental", new PeriodicPolicy(10));
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        var reference = Build(GlobalShapes, seed: 21);
        var epoch = await grain.StartAttempt();
        var ranks = Enumerable.Range(0, 4).Select(r => Slices(reference.Model, name => SaveLayout(name, r, 4), (model, adam) =>
            new Checkpointer(model, new ClusterBackend(grains, run, fixture.Store, r, 4, epoch) { Incremental = true }, [new("optimizer", adam)])
            {
                ModelLayouts = name => SaveLayout(name, r, 4),
            })).ToList();
        await Task.WhenAll(ranks.Select(r => r.Checkpointer.SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L })));

        // Only rank 2's slice of fc1's weight changes (in the reference too, where that slice lives).
        using (no_grad())
        {
            ranks[2].Model.named_parameters().First(p => p.name == "0.weight").parameter.add_(1);
            TorchTensors.SliceOf(reference.Model.named_parameters().First(p => p.name == "0.weight").parameter, SaveLayout("0.weight", 2, 4)!).add_(1);
        }
        await Task.WhenAll(ranks.Select(r => r.Checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L })));

        var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, $"{run.StorePrefix}/model_0000019");
        var changed = manifest.Sharded["model/0.weight"].Chunks.Single(c => c.Offsets![0] == SaveLayout("0.weight", 2, 4)!.Offsets![0]).Tensor;
        var written = manifest.Tensors.Where(t => manifest.Shards[t.Value.Shard].Checkpoint is null && t.Value.ByteLength > 0).Select(t => t.Key);
        Assert.Equal([changed], written);
        Assert.Contains(manifest.Shards, sh => sh.Checkpoint == "model_0000009");

        var loadEpoch = await grain.StartAttempt();
        var whole = Build(GlobalShapes, seed: 500, (model, adam) =>
            new Checkpointer(model, new ClusterBackend(grains, run, fixture.Store, 0, 1, loadEpoch), [new("optimizer", adam)]));
        await whole.Checkpointer.LoadAsync($"{ClusterBackend.Scheme}{run.Key}/model_0000019");
        foreach (var (name, parameter) in whole.Model.named_parameters())
            AssertBitEqual(reference.Model.named_parameters().First(p => p.name == name).parameter, parameter, $"parameter {name}");
    }

    /// <param name="loadStore">The store a loading rank reads through, given the statistics of its load (loaders: 3 split, then 1 whole).</param>
    private static async Task SaveWithFourRanksAndLoadAsync(IGrainFactory grains, ICheckpointStore store, string runName, Func<ICheckpointStore, LoadStatistics, ICheckpointStore> loadStore)
    {
        var run = await ClusterRanks.CreateRunAsync(grains, runName, new PeriodicPolicy(10));
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);

        var reference = Build(GlobalShapes, seed: 7);
        var epoch = await grain.StartAttempt();
        var savers = Enumerable.Range(0, 4).Select(r => Slices(reference.Model, name => SaveLayout(name, r, 4), (model, adam) =>
            new Checkpointer(model, new ClusterBackend(grains, run, store, r, 4, epoch), [new("optimizer", adam)]) { ModelLayouts = name => SaveLayout(name, r, 4) })).ToList();
        foreach (var rank in savers.Prepend(reference)) TrainOneStep(rank);
        var saves = savers.Select(s => s.Checkpointer.SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L })).ToList();
        // A rank that fails leaves the others waiting for it until their commit timeout: surface its failure at once.
        await Task.WhenAny(Task.WhenAll(saves), Task.WhenAny(saves).ContinueWith(_ => saves.FirstOrDefault(t => t.IsFaulted)?.GetAwaiter().GetResult(), TaskScheduler.Default));
        if (saves.FirstOrDefault(t => t.IsFaulted) is { } failed) await failed;
        await Task.WhenAll(saves);

        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, $"{run.StorePrefix}/model_0000009");
        Assert.Equal(["model/0.bias", "model/0.weight", "model/1.weight", "optimizer/state/0/exp_avg", "optimizer/state/0/exp_avg_sq",
            "optimizer/state/1/exp_avg", "optimizer/state/1/exp_avg_sq", "optimizer/state/2/exp_avg", "optimizer/state/2/exp_avg_sq"],
            manifest.Sharded.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(4, manifest.Sharded["model/0.weight"].Chunks.Count);
        Assert.True(manifest.Tensors.ContainsKey("model/1.bias"), "the replicated bias is stored whole, once");

        var path = $"{ClusterBackend.Scheme}{run.Key}/model_0000009";
        var loadEpoch = await grain.StartAttempt();
        var loadShapes = Enumerable.Range(0, 3).Select(r => (Rank: r, World: 3)).Append((Rank: 0, World: 1)).ToList();
        foreach (var (r, world) in loadShapes)
        {
            Func<string, TensorLayout?> layouts = world == 1 ? _ => null : name => LoadLayout(name, r, world);
            var statistics = new LoadStatistics();
            var backendStore = loadStore(store, statistics);
            var loader = Slices(Build(GlobalShapes, seed: 1000 + r).Model, layouts, (model, adam) =>
                new Checkpointer(model, new ClusterBackend(grains, run, backendStore, r, world, loadEpoch), [new("optimizer", adam)])
                {
                    ModelLayouts = world == 1 ? null : layouts,
                    LoadStatistics = statistics,
                });
            var rest = await loader.Checkpointer.LoadAsync(path);
            Assert.Equal(9L, rest["iteration"]);
            AssertSameAsSlicesOf(reference, loader, layouts);
            Assert.True(statistics.BytesRead <= 1.1 * statistics.BytesNeeded, $"rank {r} of {world} read {statistics.BytesRead} bytes for {statistics.BytesNeeded}");
            if (world == 3) Assert.True(statistics.BytesNeeded < 0.5 * manifest.TensorBytes, $"rank {r} of 3 needed {statistics.BytesNeeded} of {manifest.TensorBytes} bytes");
        }
    }

    /// <summary>A two-layer model with the given parameter shapes (a slice of the global model, or all of it), and its Adam.</summary>
    private static Rank Build(IReadOnlyDictionary<string, long[]> shapes, long seed, Func<Sequential, optim.Optimizer, Checkpointer>? checkpointer = null)
    {
        var w1 = shapes["0.weight"];
        var w2 = shapes["1.weight"];
        var model = SeededWeights.Fill(nn.Sequential(nn.Linear(w1[1], w1[0], hasBias: true), nn.Linear(w2[1], w2[0], hasBias: true)), seed);
        // Biases that are held whole while their weight is split keep the global length.
        using (no_grad())
        {
            var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
            Assert.Equal(shapes["0.bias"], parameters["0.bias"].shape);
            Assert.Equal(shapes["1.bias"], parameters["1.bias"].shape);
        }
        var adam = optim.Adam(model.parameters(), lr: 0.01);
        return new Rank(model, adam, checkpointer?.Invoke(model, adam) ?? new Checkpointer(model));
    }

    /// <summary>A rank's model: the slices of <paramref name="global"/> its layouts name (whole where none), same seed-free values.</summary>
    private static Rank Slices(Sequential global, Func<string, TensorLayout?> layouts, Func<Sequential, optim.Optimizer, Checkpointer> checkpointer)
    {
        var shapes = GlobalShapes.ToDictionary(p => p.Key, p => layouts(p.Key)?.LocalShape ?? p.Value, StringComparer.Ordinal);
        var rank = Build(shapes, seed: 0, checkpointer);
        var globals = global.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        using (no_grad())
        {
            foreach (var (name, parameter) in rank.Model.named_parameters())
                parameter.copy_(layouts(name) is { } layout ? TorchTensors.SliceOf(globals[name], layout) : globals[name]);
        }
        return rank;
    }

    /// <summary>One Adam step on the loss Σ p²: every element's update depends on that element alone, so slices train like the whole.</summary>
    private static void TrainOneStep(Rank rank)
    {
        rank.Adam.zero_grad();
        var loss = rank.Model.parameters().Select(p => (p * p).sum()).Aggregate((a, b) => a + b);
        loss.backward();
        rank.Adam.step();
    }

    private static void AssertSameAsSlicesOf(Rank reference, Rank loaded, Func<string, TensorLayout?> layouts)
    {
        var names = reference.Model.named_parameters().Select(p => p.name).ToList();
        var referenceParameters = reference.Model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, parameter) in loaded.Model.named_parameters())
            AssertBitEqual(layouts(name) is { } l ? TorchTensors.SliceOf(referenceParameters[name], l) : referenceParameters[name], parameter, $"parameter {name}");

        var referenceState = (IReadOnlyDictionary<string, object?>)new OptimizerCheckpointable(reference.Adam).StateDict()["state"]!;
        var loadedState = (IReadOnlyDictionary<string, object?>)new OptimizerCheckpointable(loaded.Adam).StateDict()["state"]!;
        for (var i = 0; i < names.Count; i++)
        {
            var want = (IReadOnlyDictionary<string, object?>)referenceState[$"{i}"]!;
            var got = (IReadOnlyDictionary<string, object?>)loadedState[$"{i}"]!;
            foreach (var field in new[] { "exp_avg", "exp_avg_sq" })
                AssertBitEqual(layouts(names[i]) is { } l ? TorchTensors.SliceOf((Tensor)want[field]!, l) : (Tensor)want[field]!, (Tensor)got[field]!, $"Adam {field} of {names[i]}");
        }
    }

    private static void AssertBitEqual(Tensor expected, Tensor actual, string what)
    {
        Assert.Equal(expected.shape, actual.shape);
        using var a = expected.detach().contiguous();
        using var b = actual.detach().contiguous();
        Assert.True(a.bytes.SequenceEqual(b.bytes), $"{what} differs from the unsharded model's");
    }
}
