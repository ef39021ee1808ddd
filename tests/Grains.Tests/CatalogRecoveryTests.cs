using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// A run's grain state is lost in the middle of the run (an operator deletes it; a storage restore): the checkpoints stay in
/// the store. Recovery adopts each committed one that verifies end to end, refuses a damaged one with the reason, tags the
/// newest, and the job goes on committing on top of what was recovered.
/// </summary>
[Collection(nameof(TwoSilos))]
public sealed class CatalogRecoveryTests(TwoSiloCluster fixture)
{
    /// <summary>
    /// Deletes the run's persisted state (catalog tail and archive) from grain storage, then deactivates the run: a grain that
    /// began a checkpoint stays active until the sweep could expire it (the cluster's pending timeout), so this asks until the
    /// next activation reads the lost state.
    /// </summary>
    private async Task LoseStateAsync(ITrainingRunGrain grain)
    {
        var storage = fixture.Cluster.Silos[0].SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(GrainStorage.Runs);
        Assert.True(await ClearAsync<RunState>(storage, "run", grain.GetGrainId()));
        await ClearAsync<CatalogArchive>(storage, "catalog", grain.GetGrainId());
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (true)
        {
            await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
            try { await grain.Get(); }
            catch (RunNotFoundException) { return; }
            Assert.True(DateTime.UtcNow < deadline, "the run grain was never deactivated");
            await Task.Delay(500);
        }
    }

    private static async Task<bool> ClearAsync<T>(IGrainStorage storage, string name, GrainId grain) where T : new()
    {
        var state = new GrainState<T>(new T());
        await storage.ReadStateAsync(name, grain, state);
        if (state.ETag is null) return false;
        await storage.ClearStateAsync(name, grain, state);
        return true;
    }

    [Fact]
    public async Task A_run_whose_state_was_deleted_adopts_its_verified_checkpoints_refuses_a_damaged_one_and_commits_on()
    {
        TestTenancy.ActAs("acme");
        var run = new RunId("acme", "recovered");
        var job = new FakeJob(fixture.Client, fixture.Store, run, worldSize: 2);
        await job.Grain.Create(new PeriodicPolicy(5));
        job.Epoch = await job.Grain.StartAttempt();
        var saved = new List<CheckpointRecord>();
        foreach (var iteration in new[] { 4L, 9L, 14L }) saved.Add((await job.SaveAsync($"model_{iteration:D7}", iteration))[0]);
        var damagedKey = $"{run.StorePrefix}/model_0000009";
        var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, damagedKey);
        var shard = Path.Combine(fixture.StoreRoot, StoreLayout.ShardKey(damagedKey, manifest.Shards[1]));
        var bytes = File.ReadAllBytes(shard);
        bytes[^1] ^= 0x20;
        File.WriteAllBytes(shard, bytes);

        await LoseStateAsync(job.Grain);

        TestTenancy.ActAs("acme");
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => job.Grain.RecoverCatalog(new PeriodicPolicy(5))); // operators only
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        var report = await job.Grain.RecoverCatalog(new PeriodicPolicy(5));

        Assert.Equal(["model_0000004", "model_0000014"], report.Adopted.Order(StringComparer.Ordinal));
        var refused = Assert.Single(report.Refused);
        Assert.Equal("model_0000009", refused.Name);
        Assert.Contains("checksum", refused.Reason);
        Assert.Equal("model_0000014", report.LastCheckpoint);
        TestTenancy.ActAs("acme");
        var catalog = await job.Grain.ListCheckpoints();
        // What the store can tell: all of each record but the epoch it was committed in.
        Assert.Equal(new[] { saved[0], saved[2] }.Select(r => (r.Name, r.Iteration, r.Bytes, r.WorldSize, r.CommittedUtc, r.ManifestKey, r.AttemptId)),
            catalog.Select(r => (r.Name, r.Iteration, r.Bytes, r.WorldSize, r.CommittedUtc, r.ManifestKey, r.AttemptId)));
        Assert.Equal("model_0000014", (await job.Grain.GetLastCheckpoint())!.Name);

        // A second recovery finds nothing new; the job starts a new attempt and commits after what was recovered.
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        Assert.Empty((await job.Grain.RecoverCatalog(new PeriodicPolicy(5))).Adopted);
        TestTenancy.ActAs("acme");
        job.Epoch = await job.Grain.StartAttempt();
        await job.SaveAsync("model_0000019", 19);
        Assert.Equal(["model_0000004", "model_0000014", "model_0000019"], (await job.Grain.ListCheckpoints()).Select(r => r.Name));
        Assert.Equal("model_0000019", (await job.Grain.GetLastCheckpoint())!.Name);
    }
}
