using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Lab.Chaos;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Cli.Tests;

/// <summary>The chaos lab's invariant checker finds each kind of trouble it counts, on a real silo and Azurite (and nothing on a sound run).</summary>
public sealed class ChaosCheckerTests
{
    private const int MaxToKeep = 3;

    [Fact]
    public async Task It_passes_a_sound_run_and_finds_a_lost_acknowledgement_a_damaged_checkpoint_and_an_orphan_blob()
    {
        await using var silo = await TestSilo.StartAsync();
        await using var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = [$"127.0.0.1:{silo.GatewayPort}"], TenantToken = silo.Token("*") });
        var store = AzureBlobStore.FromConnectionString(silo.Azurite.ConnectionString, "checkpoints");
        var run = new RunId("chaos", "checked");
        var grain = connection.Run(run);
        await grain.Create(new PeriodicPolicy(10, MaxIter: 1000, MaxToKeep: MaxToKeep));
        var committer = new RankCommitter(connection.Client, run, store, 0, 1, await grain.StartAttempt()) { Incremental = true };
        var acknowledged = new List<string>();
        for (var i = 0; i < 5; i++)
        {
            var state = new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?> { ["w"] = Tensor(i), ["frozen"] = Tensor(99) }, ["iteration"] = (long)(i * 10 + 9) };
            var (json, tensors) = StateTree.Flatten(state, v => v as HostTensor);
            acknowledged.Add((await committer.SaveAsync($"model_{i * 10 + 9:D7}", i * 10 + 9, tensors, json.ToJsonString(), null, CancellationToken.None)).Name);
        }
        var checker = new ChaosChecker(connection.Client, store);

        var sound = new ChaosFindings();
        await checker.CheckCatalogAsync(run, MaxToKeep, acknowledged, sound, loadEverything: true);
        Assert.Empty(sound.Details); // the two evicted acknowledgements are accounted for by three newer checkpoints
        Assert.Empty(await checker.OrphanBlobsAsync([run]));

        var lost = new ChaosFindings();
        await checker.CheckCatalogAsync(run, MaxToKeep, [.. acknowledged, "model_0000059"], lost, loadEverything: false);
        Assert.Equal(1, lost.LostCommits);
        Assert.Contains("model_0000059 was acknowledged as committed but is not in the catalog", lost.Details.Single(), StringComparison.Ordinal);

        var last = (await grain.GetLastCheckpoint())!;
        var folder = StoreLayout.CheckpointKeyOf(last.ManifestKey);
        var shard = (await NativeCheckpointReader.ReadManifestAsync(store, folder)).Shards.First(s => s.Checkpoint is null);
        var bytes = new byte[shard.Bytes];
        await store.ReadRangeAsync($"{folder}/{shard.Path}", 0, bytes);
        bytes[^1] ^= 0xFF; // one flipped bit pattern in the last tensor's data
        await store.WriteAsync($"{folder}/{shard.Path}", (s, ct) => s.WriteAsync(bytes, ct).AsTask());
        var damaged = new ChaosFindings();
        await checker.CheckCatalogAsync(run, MaxToKeep, acknowledged, damaged, loadEverything: true);
        Assert.Equal(1, damaged.LostCommits);
        Assert.Contains($"{last.Name} is in the catalog but does not load", damaged.Details.Single(), StringComparison.Ordinal);

        await store.WriteAsync($"{folder[..folder.LastIndexOf('/')]}/model_0000099/shard-00000-of-00001-deadbeef.safetensors", (s, ct) => s.WriteAsync(new byte[8], ct).AsTask());
        Assert.Equal([$"{folder[..folder.LastIndexOf('/')]}/model_0000099/shard-00000-of-00001-deadbeef.safetensors"], await checker.OrphanBlobsAsync([run]));
    }

    private static HostTensor Tensor(int seed)
    {
        var tensor = HostTensor.Allocate(TensorDType.F32, [64]);
        new Random(seed).NextBytes(tensor.Data);
        return tensor;
    }
}
