using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Checkpointing.Formats;
using Checkpointing.Processes;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
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

    /// <summary>
    /// Azurite behind a proxy that can cut every connection, a blob store through it, a test cluster on that store, and one run
    /// of tenant "it" with an attempt started. The caller acts as the tenant first (the request context flows into calls, not out).
    /// </summary>
    private sealed class ProxiedRun : IAsyncDisposable
    {
        private Azurite? _azurite;
        private FlakyProxy? _proxy;
        private InProcessTestCluster? _cluster;

        public FlakyProxy Proxy => _proxy!;
        public InProcessTestCluster Cluster => _cluster!;
        public AzureBlobStore Store { get; private set; } = null!;
        public RunId Run { get; private set; } = null!;
        public long Epoch { get; private set; }

        public static async Task<ProxiedRun> StartAsync(string runName, int maxRetries, AzureBlobStoreOptions storeOptions, TimeSpan? pendingTimeout = null)
        {
            var setup = new ProxiedRun();
            try
            {
                var azurite = setup._azurite = await RepoPaths.StartAzurite();
                var proxy = setup._proxy = new FlakyProxy(azurite.BlobPort);
                var connection = azurite.ConnectionString.Replace($"127.0.0.1:{azurite.BlobPort}", $"127.0.0.1:{proxy.Port}", StringComparison.Ordinal);
                setup.Store = new AzureBlobStore(
                    new BlobServiceClient(connection, AzureBlobStore.CreateClientOptions(maxRetries, networkTimeout: TimeSpan.FromSeconds(3))).GetBlobContainerClient("checkpoints"),
                    storeOptions);
                var cluster = setup._cluster = await TestClusters.StartAsync(setup.Store, pendingTimeout);
                setup.Run = await ClusterRanks.CreateRunAsync(cluster.Client, runName, new PeriodicPolicy(10));
                setup.Epoch = await cluster.Client.GetGrain<ITrainingRunGrain>(setup.Run.Key).StartAttempt();
                return setup;
            }
            catch
            {
                await setup.DisposeAsync();
                throw;
            }
        }

        /// <summary>Rank 0 of a one-rank world on the run's current attempt.</summary>
        public ClusterBackend Backend() => new(Cluster.Client, Run, Store, 0, 1, Epoch);

        public async ValueTask DisposeAsync()
        {
            if (_cluster is not null) await _cluster.DisposeAsync();
            if (_proxy is not null) await _proxy.DisposeAsync();
            if (_azurite is not null) await _azurite.DisposeAsync();
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
        TestTenancy.ActAs("it");
        await using var setup = await ProxiedRun.StartAsync("fault", maxRetries: 2, new AzureBlobStoreOptions { BlockSize = 16 << 10, MaxBlocksInFlight = 2 });
        var (proxy, store, run) = (setup.Proxy, setup.Store, setup.Run);
        var model = ClusterRanks.Replica(seed: 5);
        var trigger = new BreakAfterFirstTensor(proxy);
        var backend = setup.Backend();
        backend.Committer.OutageBudget = TimeSpan.Zero; // no waiting out: the first fault the storage client gives up on fails the save
        var checkpointer = new Checkpointer(model, backend)
        {
            WriteOptions = new NativeWriteOptions { Progress = trigger },
        };
        await checkpointer.SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L });

        trigger.Armed = true;
        var failure = await Record.ExceptionAsync(() => checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L }));
        Assert.NotNull(failure);
        Assert.True(IsStorageFault(failure), failure.ToString());
        Assert.IsType<StorageOutageException>(failure);
        trigger.Armed = false;
        proxy.Heal();

        var grain = setup.Cluster.Client.GetGrain<ITrainingRunGrain>(run.Key);
        Assert.Equal("model_0000009", (await grain.GetLastCheckpoint())!.Name);
        Assert.Equal(["model_0000009"], (await grain.ListCheckpoints()).Select(c => c.Name));
        Assert.Null(await store.GetEntryAsync($"{run.StorePrefix}/model_0000019/manifest.json"));

        await checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L });
        Assert.Equal("model_0000019", (await grain.GetLastCheckpoint())!.Name);
        var restored = ClusterRanks.Replica(seed: 77);
        new Checkpointer(restored, setup.Backend()).Load($"{ClusterBackend.Scheme}{run.Key}/model_0000019");
        Assert.True(ClusterRanks.SameWeights(model, restored));
    }

    /// <summary>
    /// Storage breaks in the middle of a rank's upload and stays away longer than the storage client's retries and than the
    /// run's pending timeout (3 s here). Within its outage budget the rank waits it out, keeping its checkpoint pending at
    /// the grain, and commits once storage is back; with a budget shorter than the outage it fails with the budget named, and
    /// the previous checkpoint stays last.
    /// </summary>
    [Fact]
    public async Task A_rank_waits_out_an_outage_within_its_budget_and_fails_naming_the_budget_past_it()
    {
        TestTenancy.ActAs("it");
        await using var setup = await ProxiedRun.StartAsync("outage", maxRetries: 1, new AzureBlobStoreOptions { BlockSize = 16 << 10, MaxBlocksInFlight = 2 },
            pendingTimeout: TimeSpan.FromSeconds(3));
        var (proxy, run) = (setup.Proxy, setup.Run);
        var grain = setup.Cluster.Client.GetGrain<ITrainingRunGrain>(run.Key);
        var trigger = new BreakAfterFirstTensor(proxy) { Armed = true };
        var backend = setup.Backend();
        backend.Committer.OutageBudget = TimeSpan.FromSeconds(60);
        backend.Committer.KeepAliveEvery = TimeSpan.FromSeconds(1); // within the pending timeout of 3 s
        var checkpointer = new Checkpointer(ClusterRanks.Replica(seed: 5), backend) { WriteOptions = new NativeWriteOptions { Progress = trigger } };

        var saving = checkpointer.SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L });
        await Task.Delay(TimeSpan.FromSeconds(8)); // storage away: every try breaks it again, and the pending timeout passes twice
        Assert.False(saving.IsCompleted, saving.Exception?.ToString() ?? "the save ended during the outage");
        trigger.Armed = false;
        proxy.Heal();
        await saving.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal("model_0000009", (await grain.GetLastCheckpoint())!.Name);

        backend.Committer.OutageBudget = TimeSpan.FromSeconds(2);
        trigger.Armed = true;
        var failure = await Record.ExceptionAsync(() => checkpointer.SaveAsync("model_0000019", new Dictionary<string, object?> { ["iteration"] = 19L }));
        var outage = Assert.IsType<StorageOutageException>(failure);
        Assert.Contains("outage budget of 2 s", outage.Message);
        trigger.Armed = false;
        proxy.Heal();
        Assert.Equal("model_0000009", (await grain.GetLastCheckpoint())!.Name);
    }

    /// <summary>
    /// A load from blob storage stages what it reads and verifies every checksum before the model changes. Small ranges make a
    /// shard many prefetched requests; the model must come back bit for bit, and neither a storage outage in the middle of the
    /// ranges nor one changed byte of a shard may change the model the load was meant for.
    /// </summary>
    [Fact]
    public async Task A_blob_load_is_bit_exact_and_an_outage_or_a_damaged_shard_leaves_the_model_unchanged()
    {
        TestTenancy.ActAs("it");
        // An odd range size: ranges straddle tensors and the header.
        await using var setup = await ProxiedRun.StartAsync("staged", maxRetries: 1, new AzureBlobStoreOptions { ReadRangeSize = (4 << 10) + 3, MaxRangesInFlight = 3 });
        var (proxy, store, run) = (setup.Proxy, setup.Store, setup.Run);
        var model = ClusterRanks.Replica(seed: 5);
        await new Checkpointer(model, setup.Backend()).SaveAsync("model_0000009", new Dictionary<string, object?> { ["iteration"] = 9L });
        var path = $"{ClusterBackend.Scheme}{run.Key}/model_0000009";

        var restored = ClusterRanks.Replica(seed: 77);
        new Checkpointer(restored, setup.Backend()).Load(path);
        Assert.True(ClusterRanks.SameWeights(model, restored));

        var interrupted = ClusterRanks.Replica(seed: 78);
        var beforeOutage = SeededWeights.Snapshot(interrupted);
        var outage = new BreakAfterFirstTensor(proxy) { Armed = true };
        var failure = await Record.ExceptionAsync(() => new Checkpointer(interrupted, setup.Backend()) { LoadProgress = outage }.LoadAsync(path));
        Assert.True(IsStorageFault(failure), failure?.ToString() ?? "the load did not fail");
        Assert.Empty(SeededWeights.ChangedSince(interrupted, beforeOutage)); // a load that failed half-way must not change the model
        proxy.Heal();

        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, $"{run.StorePrefix}/model_0000009");
        var shardKey = StoreLayout.ShardKey($"{run.StorePrefix}/model_0000009", manifest.Shards[0]);
        var bytes = new byte[manifest.Shards[0].Bytes];
        await store.ReadRangeAsync(shardKey, 0, bytes);
        bytes[^1000] ^= 0x40; // inside the last tensor's data
        await store.WriteBytesAsync(shardKey, bytes);
        var damaged = ClusterRanks.Replica(seed: 79);
        var beforeDamaged = SeededWeights.Snapshot(damaged);
        var refused = Assert.Throws<CheckpointFormatException>(() => new Checkpointer(damaged, setup.Backend()).Load(path));
        Assert.Equal(("checksum", shardKey), (refused.Check, refused.Source));
        Assert.Empty(SeededWeights.ChangedSince(damaged, beforeDamaged)); // a load of a damaged shard must not change the model
    }
}
