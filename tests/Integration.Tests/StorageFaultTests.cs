using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using Checkpointing.TrainerAgent.Cluster;
using Orleans.TestingHost;

namespace Checkpointing.Integration.Tests;

/// <summary>The blob store disappears in the middle of a cluster save: the save fails cleanly, the previous checkpoint stays tagged, a later retry succeeds.</summary>
public sealed class StorageFaultTests
{
    private sealed class BreakAfterFirstTensor(FlakyProxy proxy) : IProgress<long>
    {
        public bool Armed { get; set; }

        public void Report(long value)
        {
            if (Armed) proxy.Break();
        }
    }

    private static bool IsStorageFault(Exception? e) => e switch
    {
        null => false,
        Azure.RequestFailedException or IOException or HttpRequestException or System.Net.Sockets.SocketException => true,
        AggregateException a => a.InnerExceptions.Any(IsStorageFault),
        _ => IsStorageFault(e.InnerException),
    };

    [Fact]
    public async Task A_storage_outage_mid_upload_fails_the_save_and_a_retry_succeeds()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        await using var proxy = new FlakyProxy(azurite.BlobPort);
        var connection = azurite.ConnectionString.Replace($"127.0.0.1:{azurite.BlobPort}", $"127.0.0.1:{proxy.Port}", StringComparison.Ordinal);
        var store = new AzureBlobStore(
            new BlobServiceClient(connection, AzureBlobStore.CreateClientOptions(maxRetries: 2, networkTimeout: TimeSpan.FromSeconds(3))).GetBlobContainerClient("checkpoints"),
            new AzureBlobStoreOptions { BlockSize = 16 << 10, MaxBlocksInFlight = 2 });
        await using InProcessTestCluster cluster = await TestClusters.StartAsync(store);
        TestTenancy.ActAs("it");
        var run = await ClusterRanks.CreateRunAsync(cluster.Client, "fault", new PeriodicPolicy(10));
        var epoch = await cluster.Client.GetGrain<ITrainingRunGrain>(run.Key).StartAttempt();
        var model = ClusterRanks.Replica(seed: 5);
        var trigger = new BreakAfterFirstTensor(proxy);
        var checkpointer = new Checkpointer(model, new ClusterBackend(cluster.Client, run, store, 0, 1, epoch))
        {
            WriteOptions = new NativeWriteOptions { Progress = trigger },
        };
        await checkpointer.SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L });

        trigger.Armed = true;
        var failure = await Record.ExceptionAsync(() => checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L }));
        Assert.NotNull(failure);
        Assert.True(IsStorageFault(failure), failure.ToString());
        trigger.Armed = false;
        proxy.Heal();

        var grain = cluster.Client.GetGrain<ITrainingRunGrain>(run.Key);
        Assert.Equal("model_0000009", (await grain.GetLastCheckpoint())!.Name);
        Assert.Equal(["model_0000009"], (await grain.ListCheckpoints()).Select(c => c.Name));
        Assert.Null(await store.GetEntryAsync($"{run.StorePrefix}/model_0000019/manifest.json"));

        await checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L });
        Assert.Equal("model_0000019", (await grain.GetLastCheckpoint())!.Name);
        var restored = ClusterRanks.Replica(seed: 77);
        new Checkpointer(restored, new ClusterBackend(cluster.Client, run, store, 0, 1, epoch)).Load($"{ClusterBackend.Scheme}{run.Key}/model_0000019");
        Assert.True(ClusterRanks.SameWeights(model, restored));
    }
}
