using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.TestSupport;

namespace Checkpointing.Integration.Tests;

[CollectionDefinition(nameof(Cluster))]
public sealed class Cluster : ICollectionFixture<TwoSiloCluster>;

/// <summary>Saved by 4 ranks, each writing only its share; loaded by 1 and by 2 ranks.</summary>
[Collection(nameof(Cluster))]
public sealed class ReshardingTests(TwoSiloCluster fixture)
{
    [Fact]
    public async Task A_checkpoint_saved_by_four_ranks_loads_with_one_and_with_two()
    {
        TestTenancy.ActAs("it");
        var grains = fixture.Client;
        var run = await ClusterRanks.CreateRunAsync(grains, "reshard", new PeriodicPolicy(10));
        var epoch = await grains.GetGrain<ITrainingRunGrain>(run.Key).StartAttempt();
        var replicas = Enumerable.Range(0, 4).Select(_ => ClusterRanks.Replica(seed: 11)).ToList();

        await Task.WhenAll(Enumerable.Range(0, 4).Select(rank =>
            ClusterRanks.Checkpointer(grains, run, fixture.Store, rank, 4, epoch, replicas[rank]).SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L })));

        var record = (await grains.GetGrain<ITrainingRunGrain>(run.Key).GetLastCheckpoint())!;
        Assert.Equal(4, record.WorldSize);
        var prefix = StoreLayout.CheckpointKeyOf(record.ManifestKey);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, prefix);
        Assert.Equal(4, manifest.Shards.Count);
        // Each rank wrote only its part: no tensor is in two shards, and every shard holds some.
        Assert.Equal(manifest.Tensors.Count, manifest.Tensors.Keys.Distinct().Count());
        Assert.All(Enumerable.Range(0, 4), r => Assert.Contains(manifest.Tensors.Values, t => t.Shard == r));
        var biggest = manifest.Shards.Max(s => s.Bytes);
        Assert.True(biggest < manifest.TotalBytes * 0.35, $"shards are unbalanced: {string.Join(", ", manifest.Shards.Select(s => s.Bytes))}");

        var path = $"{TrainerAgent.ClusterBackend.Scheme}{run.Key}/model_0000009";
        var epoch2 = await grains.GetGrain<ITrainingRunGrain>(run.Key).StartAttempt();
        var single = ClusterRanks.Replica(seed: 99);
        var extra = ClusterRanks.Checkpointer(grains, run, fixture.Store, 0, 1, epoch2, single).ResumeOrLoad("", resume: true);
        Assert.Equal(9L, extra["iteration"]);
        Assert.True(ClusterRanks.SameWeights(replicas[0], single));

        var pair = Enumerable.Range(0, 2).Select(_ => ClusterRanks.Replica(seed: 123)).ToList();
        for (var rank = 0; rank < 2; rank++) ClusterRanks.Checkpointer(grains, run, fixture.Store, rank, 2, epoch2, pair[rank]).Load(path);
        Assert.All(pair, m => Assert.True(ClusterRanks.SameWeights(replicas[0], m)));
    }
}
