using Checkpointing.TestSupport;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains.Tests;

/// <summary>The run grain's durable state: history batches, the catalog archive, and changes after a failed write.</summary>
public sealed partial class TrainingRunGrainTests
{
    [Fact]
    public async Task The_history_is_written_in_batches_apart_from_the_run_state_and_outlives_the_activation()
    {
        TestTenancy.ActAs("acme");
        var job = await NewRun(worldSize: 1, new PeriodicPolicy(10, MaxToKeep: 2));
        var grain = job.Grain.GetGrainId();
        var runStateBytes = new List<int>();
        for (var i = 1; i <= 40; i++)
        {
            await job.SaveAsync($"model_{i:D7}", i);
            runStateBytes.Add(MeasuredGrainStorage.Writes[(grain, "run")].LastBytes);
        }

        // The run's state keeps two checkpoints and no history: it does not grow with the commits (40 history entries are ~3 KB).
        Assert.True(runStateBytes[^1] <= runStateBytes[2] + 128, $"run state grew from {runStateBytes[2]} to {runStateBytes[^1]} bytes over 37 commits");
        var historyWrites = MeasuredGrainStorage.Writes[(grain, "history")].Writes;
        Assert.InRange(historyWrites, 1, 10); // one at 32 entries, and the sweep's for entries that waited: not one per commit
        Assert.Equal(Enumerable.Range(1, 40).Select(i => $"model_{i:D7}"), (await job.Grain.GetHistory()).Select(h => h.Name));

        // A new activation reads the history back: what waited was written when the old one ended.
        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        var history = await job.Grain.GetHistory();
        Assert.Equal(Enumerable.Range(1, 40).Select(i => $"model_{i:D7}"), history.Select(h => h.Name));
        Assert.All(history, h => Assert.Equal(HistoryEntry.Save, h.Kind));
    }

    [Fact]
    public async Task History_that_a_run_state_written_before_carried_is_moved_to_its_own_state_on_activation()
    {
        TestTenancy.ActAs("acme");
        var (run, grainId, storage) = StoredRun("legacy");
        var legacy = Enumerable.Range(1, 3).Select(i => new HistoryEntry(HistoryEntry.Save, $"model_{i:D7}", DateTimeOffset.UtcNow, 100, 0.5, 1)).ToList();
        await storage.WriteStateAsync("run", grainId, new GrainState<RunState>
        {
            State = new RunState { Created = true, Epoch = 1, CreatedUtc = DateTimeOffset.UtcNow, LegacyHistory = [.. legacy] },
        });

        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(run.Key);
        Assert.Equal(legacy.Select(h => h.Name), (await grain.GetHistory()).Select(h => h.Name));
        Assert.Equal(1, MeasuredGrainStorage.Writes[(grainId, "history")].Writes); // written as the activation started

        await grain.SetPolicy(new PeriodicPolicy(5)); // the run's next state write leaves the old copy behind
        var stored = await StoredAsync<RunState>(storage, "run", grainId);
        Assert.Empty(stored.LegacyHistory);
        Assert.Equal(5, stored.Policy.Period);
    }

    [Fact]
    public async Task A_long_run_keeps_older_checkpoints_in_an_archive_so_each_commit_writes_a_small_state()
    {
        TestTenancy.ActAs("acme");
        var job = await NewRun(worldSize: 1, new PeriodicPolicy(1)); // no max_to_keep: the catalog only grows
        var grainId = job.Grain.GetGrainId();
        var storage = RunStorage;
        var expected = new List<string>();
        var runStateBytes = new List<int>();
        for (var i = 1; i <= 150; i++)
        {
            await job.SaveAsync($"model_{i:D7}", i);
            expected.Add($"model_{i:D7}");
            runStateBytes.Add(MeasuredGrainStorage.Writes[(grainId, "run")].LastBytes);
        }
        await job.SaveAsync("best", 5); // an older iteration than most archived entries: it sorts among them
        expected.Insert(5, "best");
        await job.SaveAsync("model_0000003", 3); // saved again: its archived entry leaves the catalog
        Assert.Equal(expected, (await job.Grain.ListCheckpoints()).Select(c => c.Name));

        // The run's state stops growing once older entries move to the archive, which is written every few dozen commits.
        Assert.True(runStateBytes[^1] < runStateBytes[RunCatalog.DefaultTailLimit - 1], $"run state {runStateBytes[^1]} bytes after 150 commits, {runStateBytes[RunCatalog.DefaultTailLimit - 1]} after {RunCatalog.DefaultTailLimit}");
        Assert.InRange(MeasuredGrainStorage.Writes[(grainId, "catalog")].Writes, 1, 150 / 32);
        var stored = await StoredAsync<RunState>(storage, "run", grainId);
        Assert.InRange(stored.Catalog.Count, 1, RunCatalog.DefaultTailLimit);
        Assert.Contains(stored.ArchiveGone, key => key.StartsWith("model_0000003/", StringComparison.Ordinal));

        // A new activation reads both parts back into one catalog.
        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        Assert.Equal(expected, (await job.Grain.ListCheckpoints()).Select(c => c.Name));
        Assert.Equal("model_0000150", (await job.Grain.GetLastCheckpoint())!.Name);

        // max_to_keep evicts archived entries: the archive is rewritten without them, and every evicted checkpoint's files go.
        await job.Grain.SetPolicy(new PeriodicPolicy(1, MaxToKeep: 3));
        string[] kept = ["best", "model_0000148", "model_0000149", "model_0000150"];
        Assert.Equal(kept, (await job.Grain.ListCheckpoints()).Select(c => c.Name));
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while ((await StoredAsync<RunState>(storage, "run", grainId)).ArchiveGone.Count > 0 && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Empty((await StoredAsync<RunState>(storage, "run", grainId)).ArchiveGone);
        Assert.Empty((await StoredAsync<CatalogArchive>(storage, "catalog", grainId)).Entries); // the four kept entries fit in the run's state
        var prefix = (await job.Grain.Get()).Id.StorePrefix + "/";
        while (await ManifestsAsync(prefix) > kept.Length && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.Equal(kept.Length, await ManifestsAsync(prefix));
        await fixture.Client.GetGrain<IManagementGrain>(0).ForceActivationCollection(TimeSpan.Zero);
        Assert.Equal(kept, (await job.Grain.ListCheckpoints()).Select(c => c.Name));
    }

    [Fact]
    public async Task A_catalog_archived_just_before_a_crash_reads_each_checkpoint_once()
    {
        TestTenancy.ActAs("acme");
        var (run, grainId, storage) = StoredRun("archived");
        var records = Enumerable.Range(1, 6).Select(i => new CheckpointRecord($"model_{i:D7}", i, 10, 1, DateTimeOffset.UtcNow,
            $"{run.StorePrefix}/model_{i:D7}/manifest.json", $"{i:x8}", 1)).ToList();
        // The archive was written with the first four; the silo stopped before the run's state dropped them from its own list.
        await storage.WriteStateAsync("catalog", grainId, new GrainState<CatalogArchive> { State = new CatalogArchive { Entries = records[..4] } });
        await storage.WriteStateAsync("run", grainId, new GrainState<RunState>
        {
            State = new RunState
            {
                Created = true, Epoch = 1, CreatedUtc = DateTimeOffset.UtcNow, LastCheckpoint = "model_0000006",
                Catalog = records[2..], ArchiveGone = [RunCatalog.KeyOf(records[0])],
            },
        });

        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(run.Key);
        Assert.Equal(records[1..].Select(r => r.Name), (await grain.ListCheckpoints()).Select(c => c.Name));
        Assert.Equal(records[1..].Sum(r => r.Bytes), (await grain.Get()).RetainedBytes);
    }

    [Fact]
    public async Task After_a_failed_state_write_a_change_queued_behind_it_is_refused_until_the_run_has_reloaded()
    {
        TestTenancy.ActAs("acme");
        var (run, grainId, _) = StoredRun("reload");
        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(run.Key);
        await grain.Create(new PeriodicPolicy(10));
        var release = new TaskCompletionSource();
        var reached = MeasuredGrainStorage.FailNextWrite(grainId, "run", release.Task);

        var failing = grain.SetPolicy(new PeriodicPolicy(20));
        await reached.WaitAsync(TimeSpan.FromSeconds(30));
        var queued = grain.SetPolicy(new PeriodicPolicy(30));
        await Task.Delay(300); // the queued call reaches the activation and waits for the failing one (a reentrant grain lets it in)
        release.SetResult();

        Assert.Contains("could not save its state", (await Assert.ThrowsAsync<RunMovedException>(() => failing)).Message);
        // Memory held period 20, which never became durable: the queued change must not build on it.
        Assert.Contains("reloading its state", (await Assert.ThrowsAsync<RunMovedException>(() => queued)).Message);
        await Eventually.Equal(10, async () => (await grain.Get()).Policy.Period);
        Assert.Equal(30, (await grain.SetPolicy(new PeriodicPolicy(30))).Policy.Period);
    }

    /// <summary>A new run of tenant acme (not created), its grain id, and the storage of run grain states, to write or read them directly.</summary>
}
