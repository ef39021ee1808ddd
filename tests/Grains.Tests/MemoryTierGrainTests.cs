using Checkpointing.TestSupport;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains.Tests;

/// <summary>The run grain's memory-tier rules (docs/memory-tier.md), driven through its interface in a two-silo cluster.</summary>
[Collection(nameof(TwoSilos))]
public sealed class MemoryTierGrainTests(TwoSiloCluster fixture)
{
    private static int _runs;
    private static readonly HolderRef[] Holders = [new("http://127.0.0.1:7400", "host-a"), new("http://127.0.0.1:7401", "host-b"), new("http://127.0.0.1:7402", "host-a")];

    /// <summary>Not async: the tenant's token set here stays in the calling test's context.</summary>
    private Task<FakeJob> NewRun(int worldSize)
    {
        TestTenancy.ActAs("acme");
        return NewRunAsync(worldSize);
    }

    private async Task<FakeJob> NewRunAsync(int worldSize)
    {
        var job = new FakeJob(fixture.Client, fixture.Store, new RunId("acme", $"memory{Interlocked.Increment(ref _runs)}"), worldSize);
        await job.Grain.Create(new PeriodicPolicy(10, MemoryPeriod: 5));
        job.Epoch = await job.Grain.StartAttempt();
        return job;
    }

    private static MemorySnapshotReport Report(FakeJob job, int rank, int worldSize, long iteration) =>
        new(job.Epoch, rank, worldSize, PeriodicPolicy.MemoryName(iteration), iteration, [Holders[rank]], 1000);

    [Fact]
    public async Task Placement_waits_for_every_rank_and_then_puts_each_replica_on_another_host_first()
    {
        var job = await NewRun(3);
        Assert.Null(await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 0, 3, Holders[0])));
        Assert.Null(await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 1, 3, Holders[1])));
        var placement = await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 2, 3, Holders[2]));

        // Rank 2 is on host-a: its replica skips rank 0 (host-a too) for the next rank on another host, rank 1 on host-b.
        Assert.Equal([Holders[2], Holders[1]], placement!.Holders);
        Assert.Equal([Holders[0], Holders[1]], (await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 0, 3, Holders[0])))!.Holders);
        await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 0, 3, new HolderRef("file:///etc", "x"))));
    }

    [Fact]
    public async Task A_rank_asking_for_its_placement_before_the_others_joined_waits_for_their_announcements()
    {
        var job = await NewRun(2);
        var early = job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 1, 2, Holders[1]), TimeSpan.FromSeconds(10));
        await Task.Delay(200); // rank 1 is waiting inside the grain
        Assert.False(early.IsCompleted, "the placement answered before every rank announced");
        var late = await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 0, 2, Holders[0]));

        Assert.Equal([Holders[1], Holders[0]], (await early)!.Holders);
        Assert.Equal([Holders[0], Holders[1]], late!.Holders);
    }

    [Fact]
    public async Task A_placement_wait_that_runs_out_answers_null_and_a_new_attempt_refuses_the_waiting_rank()
    {
        var job = await NewRun(2);
        Assert.Null(await job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 1, 2, Holders[1]), TimeSpan.FromMilliseconds(300)));

        var waiting = job.Grain.PlaceMemorySnapshots(new HolderAnnouncement(job.Epoch, 1, 2, Holders[1]), TimeSpan.FromSeconds(10));
        await Task.Delay(200);
        await job.Grain.StartAttempt();
        await Assert.ThrowsAsync<StaleAttemptException>(() => waiting); // fenced: its attempt is over
    }

    [Fact]
    public async Task A_memory_checkpoint_commits_only_when_every_rank_reported_and_records_where_each_ranks_bytes_live()
    {
        var job = await NewRun(2);
        var first = await job.Grain.ReportMemorySnapshot(Report(job, 0, 2, 4));
        Assert.Equal((false, 1), (first.Committed, first.RanksMissing));
        Assert.Null((await job.Grain.Get()).MemoryCheckpoint);

        Assert.True((await job.Grain.ReportMemorySnapshot(Report(job, 1, 2, 4))).Committed);
        var memory = (await job.Grain.Get()).MemoryCheckpoint!;
        Assert.Equal(("memory_0000004", 4L, job.Epoch, 2), (memory.Name, memory.Iteration, memory.Epoch, memory.WorldSize));
        Assert.Equal([[Holders[0]], [Holders[1]]], memory.Ranks.Select(r => r.Holders.ToArray()));
        // A retry of a report after the commit is acknowledged again; one named after another iteration is refused.
        Assert.True((await job.Grain.ReportMemorySnapshot(Report(job, 0, 2, 4))).Committed);
        await Assert.ThrowsAsync<RunRefusedException>(() => job.Grain.ReportMemorySnapshot(Report(job, 0, 2, 9) with { Name = "memory_0000004" }));
    }

    [Fact]
    public async Task A_report_from_an_earlier_attempt_is_refused_and_its_incomplete_set_never_commits()
    {
        var job = await NewRun(2);
        await job.Grain.ReportMemorySnapshot(Report(job, 0, 2, 4));
        var stale = Report(job, 1, 2, 4);
        job.Epoch = await job.Grain.StartAttempt();

        await Assert.ThrowsAsync<StaleAttemptException>(() => job.Grain.ReportMemorySnapshot(stale));
        Assert.False((await job.Grain.ReportMemorySnapshot(Report(job, 1, 2, 4))).Committed);
        Assert.Null((await job.Grain.Get()).MemoryCheckpoint);
    }

    [Fact]
    public async Task The_plan_skips_a_memory_checkpoint_that_is_not_newer_than_the_durable_tag_or_was_taken_by_another_world_size()
    {
        var job = await NewRun(2);
        await Task.WhenAll(Enumerable.Range(0, 2).Select(rank => job.Grain.ReportMemorySnapshot(Report(job, rank, 2, 4), TimeSpan.FromSeconds(10))));
        job.Epoch = await job.Grain.StartAttempt();

        var plan = await job.Grain.PlanResume(new ResumeRequest(job.Epoch, 1, 2, "host-b"));
        Assert.Equal(("memory_0000004", 4L), (plan.Memory!.Name, plan.Memory.Iteration));
        Assert.Equal([Holders[1]], plan.Memory.Sources);
        var resharded = await job.Grain.PlanResume(new ResumeRequest(job.Epoch, 1, 3, "host-b"));
        Assert.Null(resharded.Memory);
        Assert.Contains("does not reshard", resharded.Reason);

        await job.SaveAsync("model_0000009", 9);
        var newerDurable = await job.Grain.PlanResume(new ResumeRequest(job.Epoch, 0, 2, "host-a"));
        Assert.Equal((null, "model_0000009"), (newerDurable.Memory, newerDurable.Durable));
    }

    [Fact]
    public async Task One_rank_that_cannot_fetch_sends_the_whole_attempt_to_the_durable_tier_once_for_all_and_marks_the_memory_checkpoint_unusable()
    {
        var job = await NewRun(2);
        await Task.WhenAll(Enumerable.Range(0, 2).Select(rank => job.Grain.ReportMemorySnapshot(Report(job, rank, 2, 4), TimeSpan.FromSeconds(10))));
        job.Epoch = await job.Grain.StartAttempt();

        var waiting = await job.Grain.AgreeResume(new ResumeOutcome(job.Epoch, 0, 2, "memory_0000004", true), TimeSpan.Zero);
        Assert.False(waiting.Decided);
        var fallback = await job.Grain.AgreeResume(new ResumeOutcome(job.Epoch, 1, 2, "memory_0000004", false, "holder gone"), TimeSpan.Zero);
        Assert.Equal((true, false), (fallback.Decided, fallback.UseMemory));
        Assert.Contains("rank 1 could not fetch its snapshot of memory_0000004: holder gone", fallback.Reason);
        // Rank 0 asks again, even claiming success: the attempt's decision stands.
        Assert.Equal(fallback, await job.Grain.AgreeResume(new ResumeOutcome(job.Epoch, 0, 2, "memory_0000004", true), TimeSpan.Zero));
        Assert.True((await job.Grain.Get()).MemoryCheckpoint!.Unusable);
        Assert.Null((await job.Grain.PlanResume(new ResumeRequest(job.Epoch, 0, 2, "host-a"))).Memory);
        var history = Assert.Single(await job.Grain.GetHistory(), h => h.Kind == HistoryEntry.Fallback);
        Assert.Equal(fallback.Reason, history.Detail);

        // The next attempt does not try it again.
        job.Epoch = await job.Grain.StartAttempt();
        Assert.Contains("unusable", (await job.Grain.PlanResume(new ResumeRequest(job.Epoch, 0, 2, "host-a"))).Reason);
    }

    [Fact]
    public async Task When_every_rank_fetched_the_attempt_resumes_from_memory_and_a_waiting_rank_gets_the_same_answer()
    {
        var job = await NewRun(2);
        await Task.WhenAll(Enumerable.Range(0, 2).Select(rank => job.Grain.ReportMemorySnapshot(Report(job, rank, 2, 4), TimeSpan.FromSeconds(10))));
        job.Epoch = await job.Grain.StartAttempt();

        var first = job.Grain.AgreeResume(new ResumeOutcome(job.Epoch, 0, 2, "memory_0000004", true), TimeSpan.FromSeconds(10));
        var second = await job.Grain.AgreeResume(new ResumeOutcome(job.Epoch, 1, 2, "memory_0000004", true), TimeSpan.FromSeconds(10));
        Assert.Equal((true, true), (second.Decided, second.UseMemory));
        Assert.Equal(second, await first);
        Assert.False((await job.Grain.Get()).MemoryCheckpoint!.Unusable);
    }

    [Fact]
    public async Task A_rank_that_gives_up_waiting_abandons_the_checkpoint_so_a_late_report_never_commits_it_and_a_committed_one_answers_committed()
    {
        var job = await NewRun(2);
        await job.Grain.ReportMemorySnapshot(Report(job, 0, 2, 4));
        Assert.False(await job.Grain.AbandonMemorySnapshot(job.Epoch, 0, 4));
        // Rank 1 reports late: the set is complete, but rank 0 may have freed its snapshot already.
        var late = await job.Grain.ReportMemorySnapshot(Report(job, 1, 2, 4), TimeSpan.FromSeconds(1));
        Assert.False(late.Committed);
        Assert.Null((await job.Grain.Get()).MemoryCheckpoint);

        await Task.WhenAll(Enumerable.Range(0, 2).Select(rank => job.Grain.ReportMemorySnapshot(Report(job, rank, 2, 9), TimeSpan.FromSeconds(10))));
        Assert.True(await job.Grain.AbandonMemorySnapshot(job.Epoch, 1, 9));
        Assert.Equal("memory_0000009", (await job.Grain.Get()).MemoryCheckpoint!.Name);
    }
}
