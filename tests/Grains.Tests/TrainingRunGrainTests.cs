using Checkpointing.TestSupport;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace Checkpointing.Grains.Tests;

[Collection(nameof(TwoSilos))]
/// <summary>The run grain in a two-silo cluster: the commit protocol, retention and collection (durable state: TrainingRunGrainTests.DurableState.cs).</summary>
public sealed partial class TrainingRunGrainTests(TwoSiloCluster fixture)
{
    private static int _runs;

    private async Task<FakeJob> NewRun(int worldSize, PeriodicPolicy? policy = null, string tenant = "acme")
    {
        TestTenancy.ActAs(tenant);
        var run = new RunId(tenant, $"run{Interlocked.Increment(ref _runs)}");
        var job = new FakeJob(fixture.Client, fixture.Store, run, worldSize);
        await job.Grain.Create(policy ?? new PeriodicPolicy(10));
        job.Epoch = await job.Grain.StartAttempt();
        return job;
    }

    /// <summary>
    /// A world of a million ranks made the grain allocate per rank and, on the next attempt, delete one shard per rank at
    /// once, from its saved state, crash-looping the silo; a 20 MB reason was stored and sent with every directive.
    /// The grain refuses both itself, whatever edge the call came through, and its state stays as it was; a shard report is
    /// bounded too (here: the shards it says it reuses).
    /// </summary>
    [Fact]
    public async Task A_world_size_or_a_reason_past_its_bound_is_refused_by_the_grain_and_changes_nothing()
    {
        TestTenancy.ActAs("acme");
        var job = await NewRun(worldSize: 1);
        var before = await job.Grain.Get();

        var world = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.BeginCheckpoint(
            new BeginCheckpointRequest("model_0000009", 9, 1_000_000, 0, job.Epoch, TensorListSummary.Of([]))));
        var reason = await Assert.ThrowsAsync<ArgumentException>(() => job.Grain.RequestCheckpointNow(new string('x', RequestBounds.MaxReasonLength + 1)));

        Assert.Contains($"1 to {RequestBounds.MaxWorldSize} ranks", world.Message);
        Assert.Contains($"at most {RequestBounds.MaxReasonLength} characters", reason.Message);
        var after = await job.Grain.Get();
        Assert.Empty(after.Pending);
        Assert.Null(after.CheckpointRequest);
        Assert.Equal(before.Epoch, after.Epoch);
        await job.Grain.RequestCheckpointNow(new string('x', RequestBounds.MaxReasonLength));

        var report = await job.WriteShard(await job.Begin("model_0000009", 9, 0), 9);
        var reused = Enumerable.Range(0, RequestBounds.MaxReusedShards + 1).Select(i => new ShardInfo($"shard-{i}", 1, "00", "model_0000004")).ToList();
        var tooMany = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportShard(report with { Reused = reused }));
        Assert.Contains($"reuses at most {RequestBounds.MaxReusedShards} shards", tooMany.Message);
    }

    [Fact]
    public async Task Four_ranks_commit_a_checkpoint_that_any_reader_loads()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 4);
        var plans = await Task.WhenAll(Enumerable.Range(0, 4).Select(r => job.Begin("model_0000009", 9, r)));

        var allKeys = plans.SelectMany(p => p.TensorKeys).ToList();
        Assert.Equal(job.Tensors(9).Select(t => t.Key).Order(), allKeys.Order());
        Assert.Equal(allKeys.Count, allKeys.Distinct().Count());
        Assert.All(plans, p => Assert.NotEmpty(p.TensorKeys));
        Assert.Single(plans.Select(p => p.AttemptId).Distinct());

        var acks = new List<ShardAck>();
        foreach (var plan in plans) acks.Add(await job.Grain.ReportShard(await job.WriteShard(plan, 9)));
        Assert.All(acks.Take(3), a => Assert.False(a.Committed));
        Assert.Equal([3, 2, 1], acks.Take(3).Select(a => a.RanksMissing));
        Assert.True(acks[3].Committed);

        var record = Assert.IsType<CheckpointRecord>(acks[3].Record);
        Assert.Equal("model_0000009", (await job.Grain.GetLastCheckpoint())!.Name);
        var prefix = StoreLayout.CheckpointKeyOf(record.ManifestKey);
        Assert.StartsWith("tenants/acme/runs/", prefix);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, prefix);
        Assert.Equal(4, manifest.WorldSize);
        Assert.Equal(4, manifest.Shards.Count);
        var state = await NativeCheckpointReader.LoadAsync(fixture.Store, prefix, manifest, HostTensor.Allocator);
        var model = (OrderedDictionary<string, object?>)state["model"]!;
        foreach (var expected in job.Tensors(9))
        {
            Assert.Equal(((HostTensor)expected.Source).Data, ((HostTensor)model[expected.Key["model/".Length..]]!).Data);
        }
        Assert.Equal(9L, state["iteration"]);
    }

    [Fact]
    public async Task Retried_begin_and_duplicate_reports_never_duplicate_the_catalog()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        var first = await job.Begin("model_0000009", 9, 0);
        var retried = await job.Begin("model_0000009", 9, 0);
        Assert.Equal(first with { TensorKeys = [] }, retried with { TensorKeys = [] });
        Assert.Equal(first.TensorKeys, retried.TensorKeys);
        var report0 = await job.WriteShard(first, 9);
        await job.Grain.ReportShard(report0);
        await job.Grain.ReportShard(report0);
        var plan1 = await job.Begin("model_0000009", 9, 1);
        var report1 = await job.WriteShard(plan1, 9);
        Assert.True((await job.Grain.ReportShard(report1)).Committed);
        var again = await job.Grain.ReportShard(report1);
        Assert.True(again.Committed);
        Assert.Single(await job.Grain.ListCheckpoints());

        var newPlan = await job.Begin("model_0000019", 19, 0);
        var newReport = await job.WriteShard(newPlan, 19);
        await job.Grain.ReportShard(newReport);
        var conflicting = newReport with { Shard = newReport.Shard with { Checksum = "crc64:0000000000000000" } };
        var e = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportShard(conflicting));
        Assert.Contains("already reported", e.Message);
    }

    [Fact]
    public async Task A_stale_attempt_is_fenced_off_and_its_shards_collected()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        var oldEpoch = job.Epoch;
        var plan = await job.Begin("model_0000009", 9, 0);
        var report = await job.WriteShard(plan, 9);

        var newEpoch = await job.Grain.StartAttempt();
        Assert.Equal(oldEpoch + 1, newEpoch);
        var e = await Assert.ThrowsAsync<StaleAttemptException>(() => job.Grain.ReportShard(report));
        Assert.Contains($"a call from attempt {oldEpoch} is stale", e.Message);
        await Assert.ThrowsAsync<StaleAttemptException>(() => job.Begin("model_0000009", 9, 1));
        await Assert.ThrowsAsync<StaleAttemptException>(() => job.Grain.GetDirective(oldEpoch, 0));
        Assert.Empty((await job.Grain.Get()).Pending);
        Assert.False(File.Exists(Path.Combine(fixture.StoreRoot, plan.ShardKey)));

        job.Epoch = newEpoch;
        await job.SaveAsync("model_0000009", 9);
        Assert.Equal("model_0000009", (await job.Grain.GetLastCheckpoint())!.Name);
    }

    [Fact]
    public async Task A_new_attempt_keeps_checkpoints_the_catalog_does_not_know_and_collects_only_unreferenced_shards()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var source = await NewRun(worldSize: 2);
        await source.SaveAsync("model_0000009", 9);
        var sourceFolder = Path.Combine(fixture.StoreRoot, (await source.Grain.Get()).Id.StorePrefix, "model_0000009");

        // A run whose grain state was lost while its checkpoints persisted, plus leftovers of killed saves.
        var lost = new RunId("acme", $"run{Interlocked.Increment(ref _runs)}");
        var kept = Path.Combine(fixture.StoreRoot, lost.StorePrefix, "model_0000009");
        Directory.CreateDirectory(kept);
        foreach (var file in Directory.GetFiles(sourceFolder)) File.Copy(file, Path.Combine(kept, Path.GetFileName(file)));
        var referenced = Directory.GetFiles(kept).Select(Path.GetFileName).Order().ToList();
        var shard = Directory.GetFiles(kept, "shard-*")[0];
        File.Copy(shard, Path.Combine(kept, StoreLayout.ShardName(0, 2, "deadbeef")));
        var unfinished = Path.Combine(fixture.StoreRoot, lost.StorePrefix, "model_0000019", StoreLayout.ShardName(0, 2, "cafebabe"));
        Directory.CreateDirectory(Path.GetDirectoryName(unfinished)!);
        File.Copy(shard, unfinished);

        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(lost.Key);
        await grain.Create(new PeriodicPolicy(10));
        await grain.StartAttempt();

        Assert.Equal(referenced, Directory.GetFiles(kept).Select(Path.GetFileName).Order());
        Assert.False(File.Exists(unfinished));
        var prefix = $"{lost.StorePrefix}/model_0000009";
        var state = await NativeCheckpointReader.LoadAsync(fixture.Store, prefix, await NativeCheckpointReader.ReadManifestAsync(fixture.Store, prefix), HostTensor.Allocator);
        Assert.Equal(9L, state["iteration"]);
    }

    [Fact]
    public async Task A_storage_error_while_collecting_leftovers_does_not_fail_the_new_attempt()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        var folder = Path.Combine(fixture.StoreRoot, (await job.Grain.Get()).Id.StorePrefix, "model_0000009");
        Directory.CreateDirectory(folder);
        var leftover = Path.Combine(folder, StoreLayout.ShardName(0, 2, "deadbeef"));
        await File.WriteAllBytesAsync(leftover, new byte[16]);

        await Chattr("+i", folder); // even root cannot delete from an immutable folder
        try
        {
            Assert.Equal(job.Epoch + 1, await job.Grain.StartAttempt());
            Assert.Equal(job.Epoch + 1, (await job.Grain.Get()).Epoch);
            Assert.True(File.Exists(leftover));
        }
        finally
        {
            await Chattr("-i", folder);
        }
        Assert.Equal(job.Epoch + 2, await job.Grain.StartAttempt());
        Assert.False(File.Exists(leftover));
    }

    private static async Task Chattr(string flag, string path)
    {
        using var chattr = System.Diagnostics.Process.Start("chattr", [flag, path]);
        await chattr.WaitForExitAsync();
        Assert.Equal(0, chattr.ExitCode);
    }

    [Fact]
    public async Task Retention_keeps_max_to_keep_periodic_checkpoints_and_deletes_the_rest()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2, new PeriodicPolicy(10, MaxIter: 50, MaxToKeep: 2));
        foreach (var it in new long[] { 9, 19, 29, 39 }) await job.SaveAsync($"model_{it:D7}", it);
        await job.SaveAsync("model_final", 49);
        await job.SaveAsync("model_0000049", 49);

        var names = (await job.Grain.ListCheckpoints()).Select(c => c.Name).ToList();
        Assert.Equal(["model_0000039", "model_final", "model_0000049"], names);
        // Evicted checkpoints are deleted after the acknowledgement: their folders empty soon after.
        var runDir = Path.Combine(fixture.StoreRoot, "tenants", "acme", "runs", (await job.Grain.Get()).Id.Run);
        await Eventually.Equal(names.Order().ToList(), () => Directory.GetDirectories(runDir).Select(d => Path.GetFileName(d)!).Order().ToList());
    }

    [Fact]
    public async Task Commits_out_of_iteration_order_keep_the_catalog_ordered_and_the_tag_on_the_newest()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 1);
        var late = await job.Begin("model_0000009", 9, 0);
        await job.SaveAsync("model_0000019", 19);
        await job.Grain.ReportShard(await job.WriteShard(late, 9));
        Assert.Equal(["model_0000009", "model_0000019"], (await job.Grain.ListCheckpoints()).Select(c => c.Name));
        Assert.Equal("model_0000019", (await job.Grain.GetLastCheckpoint())!.Name);
    }

    [Fact]
    public async Task Abandoned_pending_checkpoints_expire_and_their_shards_are_collected()
    {
        // The silos run in this process: their ckpt_aborts counter is seen here as an exporter would see it.
        var expiries = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == SiloMetrics.MeterName && instrument.Name == "ckpt_aborts") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var labels = tags.ToArray().ToDictionary(t => t.Key, t => t.Value as string);
            if (labels.GetValueOrDefault("reason") == AbortReason.Expired && labels.GetValueOrDefault("tenant") == "acme") Interlocked.Add(ref expiries, (int)value);
        });
        listener.Start();
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        var plan = await job.Begin("model_0000009", 9, 0);
        await job.Grain.ReportShard(await job.WriteShard(plan, 9));
        Assert.True(File.Exists(Path.Combine(fixture.StoreRoot, plan.ShardKey)));

        // The sweep drops the pending checkpoint before its state write completes, and deletes the shards after it, in the background.
        var shard = Path.Combine(fixture.StoreRoot, plan.ShardKey);
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (((await job.Grain.Get()).Pending.Count > 0 || File.Exists(shard)) && DateTime.UtcNow < deadline) await Task.Delay(200);
        Assert.Empty((await job.Grain.Get()).Pending);
        Assert.False(File.Exists(shard));
        var e = await Assert.ThrowsAsync<RunRefusedException>(async () => await job.Grain.ReportShard(await job.WriteShard(plan, 9)));
        Assert.Contains("expired, was aborted, or was never begun", e.Message);
        Assert.True(Volatile.Read(ref expiries) >= 1, "the expiry was not counted as ckpt_aborts{reason=expired}");
    }

    [Fact]
    public async Task Checkpoint_now_is_seen_by_agents_until_a_checkpoint_commits()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        Assert.Null((await job.Grain.GetDirective(job.Epoch, 3)).CheckpointNow);
        await job.Grain.RequestCheckpointNow("preemption notice");
        var directive = await job.Grain.GetDirective(job.Epoch, 4);
        Assert.Equal("preemption notice", directive.CheckpointNow!.Reason);
        Assert.Equal(6, directive.CheckpointNow.SaveAtIteration);
        Assert.Equal(6, (await job.Grain.GetDirective(job.Epoch, 5)).CheckpointNow!.SaveAtIteration); // the other rank, a step behind, agrees
        await job.SaveAsync("model_0000006", 6);
        Assert.Null((await job.Grain.GetDirective(job.Epoch, 7)).CheckpointNow);
    }

    [Fact]
    public async Task A_report_reusing_a_shard_the_run_does_not_store_is_refused()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 1);
        await job.SaveAsync("model_0000001", 1);
        var plan = await job.Begin("model_0000002", 2, 0);
        var report = await job.WriteShard(plan, 2);
        var (key, info) = report.Tensors.First();
        var tensors = report.Tensors.ToDictionary(p => p.Key, p => p.Key == key ? info with { Shard = 1 } : p.Value);
        ShardInfo Elsewhere(string holder) => new(StoreLayout.ShardName(0, 1, "deadbeef"), 64, "crc64:0000000000000000", holder);

        var own = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportShard(report with { Tensors = tensors, Reused = [Elsewhere("model_0000002")] }));
        Assert.Contains("not one of another checkpoint", own.Message);
        var gone = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportShard(report with { Tensors = tensors, Reused = [Elsewhere("model_0000001")] }));
        Assert.Contains("no longer stored", gone.Message);
        Assert.Equal(["model_0000001"], (await job.Grain.ListCheckpoints()).Select(c => c.Name));
    }

    [Fact]
    public async Task Plans_are_validated()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 2);
        var none = TensorListSummary.Of([]);
        await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.BeginCheckpoint(new BeginCheckpointRequest("x", 1, 2, 5, job.Epoch, none)));
        await Assert.ThrowsAsync<ArgumentException>(() => job.Grain.BeginCheckpoint(new BeginCheckpointRequest("../x", 1, 2, 0, job.Epoch, none)));
        await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.BeginCheckpoint(new BeginCheckpointRequest("x", 1, 2, 0, job.Epoch, none with { Sha256 = "00" })));
        Assert.Throws<ArgumentException>(() => TensorListSummary.Of([new TensorSize("a", 4), new TensorSize("a", 4)]));
        var plan = await job.Begin("model_0000009", 9, 0);
        var report = await job.WriteShard(plan, 9);
        var wrongShard = await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportShard(report with { Rank = 1 }));
        Assert.Contains("the plan says", wrongShard.Message);
        await Assert.ThrowsAsync<RunNotFoundException>(() => fixture.Client.GetGrain<ITrainingRunGrain>("acme/never-created").Get());
    }

    [Fact]
    public async Task Creating_twice_with_another_policy_is_refused_and_delete_removes_everything()
    {
        TestTenancy.ActAs("acme"); // a credential set inside a helper would not flow back here
        var job = await NewRun(worldSize: 1);
        await job.Grain.Create(new PeriodicPolicy(10));
        await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.Create(new PeriodicPolicy(5)));
        await job.SaveAsync("model_0000009", 9);
        var run = (await job.Grain.Get()).Id;
        Assert.Contains(run.Run, await fixture.Client.GetGrain<ITenantGrain>("acme").ListRuns());
        await job.Grain.Delete();
        Assert.False(Directory.Exists(Path.Combine(fixture.StoreRoot, run.StorePrefix)));
        Assert.DoesNotContain(run.Run, await fixture.Client.GetGrain<ITenantGrain>("acme").ListRuns());
        await Assert.ThrowsAsync<RunNotFoundException>(() => job.Grain.Get());
    }

    [Fact]
    public async Task Fifty_runs_of_eight_ranks_commit_at_once_and_every_catalog_is_exact()
    {
        TestTenancy.ActAs("load"); // a credential set inside a helper would not flow back here
        var jobs = await Task.WhenAll(Enumerable.Range(0, 50).Select(_ => NewRun(worldSize: 8, new PeriodicPolicy(10), tenant: "load")));
        await Task.WhenAll(jobs.Select(async job =>
        {
            foreach (var it in new long[] { 9, 19, 29 }) await job.SaveAsync($"model_{it:D7}", it);
        }));
        foreach (var job in jobs)
        {
            var catalog = await job.Grain.ListCheckpoints();
            Assert.Equal(["model_0000009", "model_0000019", "model_0000029"], catalog.Select(c => c.Name));
            Assert.All(catalog, c => Assert.Equal(8, c.WorldSize));
            Assert.Equal("model_0000029", (await job.Grain.GetLastCheckpoint())!.Name);
            Assert.Empty((await job.Grain.Get()).Pending);
            var manifest = await NativeCheckpointReader.ReadManifestAsync(fixture.Store, catalog[^1].ManifestKey[..catalog[^1].ManifestKey.LastIndexOf('/')]);
            Assert.Equal(12, manifest.Tensors.Count);
        }
    }

    private (RunId Run, GrainId GrainId, IGrainStorage Storage) StoredRun(string name)
    {
        var run = new RunId("acme", $"{name}{Interlocked.Increment(ref _runs)}");
        return (run, GrainId.Create("trainingrun", run.Key), RunStorage);
    }

    private IGrainStorage RunStorage => fixture.Cluster.Silos[0].SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(GrainStorage.Runs);

    private async Task<int> ManifestsAsync(string prefix) =>
        await fixture.Store.ListAsync(prefix).CountAsync(e => e.Key.EndsWith("/" + ManifestJson.FileName, StringComparison.Ordinal));

    private static async Task<T> StoredAsync<T>(IGrainStorage storage, string stateName, GrainId grainId) where T : new()
    {
        var stored = new GrainState<T>();
        await storage.ReadStateAsync(stateName, grainId, stored);
        return stored.State ?? new T();
    }
}
