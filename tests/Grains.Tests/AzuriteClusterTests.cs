using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Processes;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Checkpointing.Grains.Tests;

/// <summary>Grain state and shards in a real Azure Storage emulator: state survives a full cluster restart; ETag conflicts surface.</summary>
public sealed class AzuriteClusterTests : IAsyncLifetime
{
    private Azurite _azurite = null!;

    public async Task InitializeAsync() => _azurite = await RepoPaths.StartAzurite();

    public async Task DisposeAsync() => await _azurite.DisposeAsync();

    private AzureBlobStore CheckpointStore() => AzureBlobStore.FromConnectionString(_azurite.ConnectionString, "checkpoints");

    private async Task<InProcessTestCluster> StartCluster()
    {
        var builder = new InProcessTestClusterBuilder(2);
        var connection = _azurite.ConnectionString;
        builder.ConfigureSilo((_, silo) =>
        {
            foreach (var name in new[] { GrainStorage.Runs, GrainStorage.Tenants })
            {
                silo.AddAzureBlobGrainStorage(name, o => o.BlobServiceClient = new BlobServiceClient(connection));
            }
            silo.UseInMemoryReminderService();
            silo.AddCheckpointing(AzureBlobStore.FromConnectionString(connection, "checkpoints"), o => o.SigningKey = TestTenancy.SigningKey);
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    [Fact]
    public async Task Every_catalog_is_intact_after_a_full_cluster_restart()
    {
        TestTenancy.ActAs("persist");
        var expected = new Dictionary<string, string[]>();
        await using (var cluster = await StartCluster())
        {
            for (var i = 0; i < 5; i++)
            {
                var job = new FakeJob(cluster.Client, CheckpointStore(), new RunId("persist", $"r{i}"), worldSize: 2);
                await job.Grain.Create(new PeriodicPolicy(10, MaxToKeep: 2));
                job.Epoch = await job.Grain.StartAttempt();
                foreach (var it in new long[] { 9, 19, 29 }) await job.SaveAsync($"model_{it:D7}", it);
                expected[$"persist/r{i}"] = (await job.Grain.ListCheckpoints()).Select(c => c.Name).ToArray();
            }
            await cluster.StopAllSilosAsync();
        }

        await using var restarted = await StartCluster();
        foreach (var (key, names) in expected)
        {
            var grain = restarted.Client.GetGrain<ITrainingRunGrain>(key);
            var view = await grain.Get();
            Assert.Equal(["model_0000019", "model_0000029"], names);
            Assert.Equal(names, view.Catalog.Select(c => c.Name));
            Assert.Equal("model_0000029", view.LastCheckpoint);
            Assert.Equal(1, view.Epoch);
            var record = view.Catalog[^1];
            var manifest = await NativeCheckpointReader.ReadManifestAsync(CheckpointStore(), StoreLayout.CheckpointKeyOf(record.ManifestKey));
            await NativeCheckpointReader.VerifyAsync(CheckpointStore(), StoreLayout.CheckpointKeyOf(record.ManifestKey), manifest);
        }
        Assert.Equal(5, (await restarted.Client.GetGrain<ITenantGrain>("persist").ListRuns()).Count);
    }

    [Fact]
    public async Task A_long_runs_archived_catalog_reads_back_whole_after_full_cluster_restarts()
    {
        TestTenancy.ActAs("archive");
        var run = new RunId("archive", "long");
        var names = Enumerable.Range(1, RunCatalog.DefaultTailLimit + 6).Select(i => $"model_{i:D7}").ToList();
        await using (var cluster = await StartCluster())
        {
            var job = new FakeJob(cluster.Client, CheckpointStore(), run, worldSize: 1, tensors: 2);
            await job.Grain.Create(new PeriodicPolicy(1)); // keeps every checkpoint: older ones move to the archive
            job.Epoch = await job.Grain.StartAttempt();
            for (var i = 0; i < names.Count; i++) await job.SaveAsync(names[i], i + 1);
            await cluster.StopAllSilosAsync(); // the activation ends: an archive move still running finishes first
        }
        var container = new BlobServiceClient(_azurite.ConnectionString).GetBlobContainerClient("grainstate");
        var blobs = new List<string>();
        await foreach (var item in container.GetBlobsAsync()) blobs.Add(item.Name);
        Assert.Contains(blobs, b => b.Contains("long", StringComparison.Ordinal) && b.Contains("catalog", StringComparison.OrdinalIgnoreCase));

        await using (var restarted = await StartCluster())
        {
            var grain = restarted.Client.GetGrain<ITrainingRunGrain>(run.Key);
            Assert.Equal(names, (await grain.ListCheckpoints()).Select(c => c.Name));
            // Evicting archived entries: recorded in the run's state, then the archive is rewritten without them.
            await grain.SetPolicy(new PeriodicPolicy(1, MaxToKeep: 2));
            Assert.Equal(names[^2..], (await grain.ListCheckpoints()).Select(c => c.Name));
            await restarted.StopAllSilosAsync();
        }

        await using var again = await StartCluster();
        Assert.Equal(names[^2..], (await again.Client.GetGrain<ITrainingRunGrain>(run.Key).ListCheckpoints()).Select(c => c.Name));
    }

    [Fact]
    public async Task A_conflicting_write_to_the_state_surfaces_as_an_ETag_error_not_a_lost_update()
    {
        TestTenancy.ActAs("etag");
        await using var cluster = await StartCluster();
        var grain = cluster.Client.GetGrain<ITrainingRunGrain>("etag/r");
        await grain.Create(new PeriodicPolicy(10));

        // Another writer (a second cluster sharing the storage by mistake) replaces the state blob.
        var container = new BlobServiceClient(_azurite.ConnectionString).GetBlobContainerClient("grainstate");
        var blob = await FindStateBlob(container, "etag/r");
        var content = (await blob.DownloadContentAsync()).Value.Content;
        await blob.UploadAsync(content, overwrite: true);

        // The ETag conflict reaches the caller as "reloaded: try again", naming the conflict; nothing is overwritten.
        var conflict = await Assert.ThrowsAsync<RunMovedException>(() => grain.SetPolicy(new PeriodicPolicy(20)));
        Assert.Contains(nameof(InconsistentStateException), conflict.Message);
        // The grain was deactivated; the next call reads the current state and succeeds.
        var view = await grain.SetPolicy(new PeriodicPolicy(30));
        Assert.Equal(30, view.Policy.Period);
    }

    [Fact]
    public async Task Shards_left_by_killed_ranks_are_collected_when_the_job_restarts_and_unknown_manifests_kept()
    {
        TestTenancy.ActAs("orphans");
        await using var cluster = await StartCluster();
        var store = CheckpointStore();
        var run = new RunId("orphans", "r");
        var job = new FakeJob(cluster.Client, store, run, worldSize: 2);
        await job.Grain.Create(new PeriodicPolicy(10, MaxToKeep: 2));
        job.Epoch = await job.Grain.StartAttempt();
        await job.SaveAsync("model_0000009", 9);
        var committed = (await job.Grain.ListCheckpoints()).Single();
        string[] kept = [.. await Keys(store, run)];

        // Rank 0 uploaded its shard, then the job was killed before rank 1 did: a pending checkpoint with one shard.
        await job.WriteShard(await job.Begin("model_0000019", 19, 0), 19);
        // A rank of an attempt the grain never knew (or already forgot) uploaded into a committed folder and a new one.
        await store.WriteTextAsync($"{run.StorePrefix}/model_0000009/{StoreLayout.ShardName(1, 2, "0badf00d")}", "orphan");
        await store.WriteTextAsync($"{run.StorePrefix}/model_0000029/{StoreLayout.ShardName(0, 1, "12345678")}", "orphan");
        // A commit that wrote its manifest and crashed before the run's state was written: kept, as any manifest the catalog does not know.
        await store.WriteTextAsync($"{run.StorePrefix}/model_0000039/manifest.json", "{}");
        // Something that is not ours stays.
        await store.WriteTextAsync($"{run.StorePrefix}/model_0000009/notes.txt", "not a checkpoint file");

        job.Epoch = await job.Grain.StartAttempt(); // the job restarts

        string[] expected = [.. kept, $"{run.StorePrefix}/model_0000009/notes.txt", $"{run.StorePrefix}/model_0000039/manifest.json"];
        Assert.Equal(expected.Order(StringComparer.Ordinal), await Keys(store, run));
        Assert.Equal(committed, (await job.Grain.ListCheckpoints()).Single());
        var folder = StoreLayout.CheckpointKeyOf(committed.ManifestKey);
        await NativeCheckpointReader.VerifyAsync(store, folder, await NativeCheckpointReader.ReadManifestAsync(store, folder));
    }

    private static async Task<List<string>> Keys(ICheckpointStore store, RunId run)
    {
        var keys = new List<string>();
        await foreach (var entry in store.ListAsync(run.StorePrefix + "/")) keys.Add(entry.Key);
        return keys;
    }

    private static async Task<BlobClient> FindStateBlob(BlobContainerClient container, string runKey)
    {
        await foreach (var item in container.GetBlobsAsync())
        {
            if (item.Name.Contains(runKey.Replace("/", "%2F", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase) ||
                item.Name.Contains(runKey, StringComparison.Ordinal))
            {
                return container.GetBlobClient(item.Name);
            }
        }
        var names = new List<string>();
        await foreach (var item in container.GetBlobsAsync()) names.Add(item.Name);
        throw new InvalidOperationException($"no state blob for {runKey} among: {string.Join(", ", names)}");
    }
}
