using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Integration.Tests;

/// <summary>
/// The memory tier end to end in one process (docs/memory-tier.md): a real two-silo cluster, real holders over HTTP on
/// loopback, real TorchSharp models. Ranks step, memory checkpoints commit through the run grain, then the job "restarts"
/// with a new attempt and fresh models, and resumes from the newest complete tier.
/// </summary>
[Collection(nameof(Cluster))]
public sealed class MemoryTierTests(TwoSiloCluster fixture) : IAsyncLifetime
{
    private const string Tenant = "it";
    private readonly List<HolderServer> _holders = [];
    /// <summary>The job's one token: holders accept exactly the token they were started with.</summary>
    private readonly string _token = TestTenancy.Token(Tenant);

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var holder in _holders) await holder.DisposeAsync();
    }

    [Fact]
    public async Task A_restart_resumes_every_rank_from_the_newest_memory_checkpoint_bit_for_bit_and_a_replaced_host_fetches_from_its_buddy()
    {
        TestTenancy.ActAs(Tenant);
        var (run, grain) = await CreateAsync("memory-resume", new PeriodicPolicy(100, MaxIter: 60, MemoryPeriod: 10));
        var hosts = new[] { await StartHolderAsync("host-0"), await StartHolderAsync("host-1") };
        var epoch = await grain.StartAttempt();
        var (models, agents) = await JoinAsync(run, epoch, hosts, seed: 5);
        var atNineteen = await TrainAsync(grain, models, agents, iterations: 25, committedAt: 19);
        var committed = (await grain.Get()).MemoryCheckpoint!;
        Assert.Equal(2, committed.WorldSize);
        // Each rank on its own holder first, then its buddy's on the other host.
        Assert.Equal(["host-0", "host-1"], committed.Ranks[0].Holders.Select(h => h.Host));
        Assert.Equal(["host-1", "host-0"], committed.Ranks[1].Holders.Select(h => h.Host));
        foreach (var agent in agents) await agent.DisposeAsync();

        // Host 1 is lost with its holder; its rank comes back on a new host whose holder is empty.
        await hosts[1].DisposeAsync();
        hosts[1] = await StartHolderAsync("host-1-replaced");
        var epoch2 = await grain.StartAttempt();
        var (fresh, resumed) = await JoinAsync(run, epoch2, hosts, seed: 99);
        var results = await Task.WhenAll(resumed.Select(a => a.ResumeAsync()));

        Assert.All(results, r => Assert.Equal((ResumeResult.Memory, "memory_0000019", 20L), (r.Tier, r.Name, r.StartIteration)));
        Assert.All(fresh, model => Assert.True(ClusterRanks.SameWeights(model, atNineteen), "a rank's weights differ from the snapshot at iteration 19"));
        var loads = (await grain.GetHistory()).Where(h => h.Kind == HistoryEntry.Load && h.Epoch == epoch2).ToList();
        Assert.Equal([0, 1], loads.Select(l => l.Rank!.Value).Order());
        Assert.All(loads, l => Assert.Equal("memory_0000019", l.Name));
        foreach (var agent in resumed) await agent.DisposeAsync();
    }

    [Fact]
    public async Task When_every_holder_of_a_rank_is_gone_the_attempt_falls_back_to_the_durable_tier_and_the_history_says_why()
    {
        TestTenancy.ActAs(Tenant);
        var (run, grain) = await CreateAsync("memory-fallback", new PeriodicPolicy(10, MaxIter: 60, MemoryPeriod: 5));
        var hosts = new[] { await StartHolderAsync("host-0"), await StartHolderAsync("host-1") };
        var epoch = await grain.StartAttempt();
        var (models, agents) = await JoinAsync(run, epoch, hosts, seed: 6);
        // model_0000009 is durable; memory_0000014 is the newest memory checkpoint.
        var atNine = await TrainAsync(grain, models, agents, iterations: 15, committedAt: 9);
        await WaitForMemoryCheckpointAsync(grain, "memory_0000014");
        foreach (var agent in agents) await agent.DisposeAsync();

        // Both hosts are lost: rank 1's snapshot and its replica are gone.
        foreach (var host in hosts) await host.DisposeAsync();
        hosts = [await StartHolderAsync("host-2"), await StartHolderAsync("host-3")];
        var epoch2 = await grain.StartAttempt();
        var (fresh, resumed) = await JoinAsync(run, epoch2, hosts, seed: 77);
        var results = await Task.WhenAll(resumed.Select(a => a.ResumeAsync()));

        Assert.All(results, r => Assert.Equal((ResumeResult.Durable, "model_0000009", 10L), (r.Tier, r.Name, r.StartIteration)));
        Assert.All(fresh, model => Assert.True(ClusterRanks.SameWeights(model, atNine), "a rank's weights differ from model_0000009"));
        var fallback = Assert.Single(await grain.GetHistory(), h => h.Kind == HistoryEntry.Fallback);
        Assert.Equal("memory_0000014", fallback.Name);
        Assert.Contains("could not fetch its snapshot of memory_0000014", fallback.Detail);
        Assert.True((await grain.Get()).MemoryCheckpoint!.Unusable);
        foreach (var agent in resumed) await agent.DisposeAsync();
    }

    [Fact]
    public async Task A_holder_lost_before_the_next_memory_checkpoint_leaves_it_uncommitted_and_the_resume_takes_the_newest_complete_one()
    {
        TestTenancy.ActAs(Tenant);
        var (run, grain) = await CreateAsync("memory-holder-lost", new PeriodicPolicy(100, MaxIter: 60, MemoryPeriod: 10));
        var hosts = new[] { await StartHolderAsync("host-0"), await StartHolderAsync("host-1") };
        var epoch = await grain.StartAttempt();
        var (models, agents) = await JoinAsync(run, epoch, hosts, seed: 8);
        // Host 1 goes away before memory_0000019: rank 1 cannot hold its own snapshot, rank 0 cannot place its replica.
        var atNine = await TrainAsync(grain, models, agents, iterations: 25, committedAt: 9, afterStep: async iteration => { if (iteration == 12) await hosts[1].DisposeAsync(); });
        foreach (var agent in agents) await agent.DisposeAsync();
        Assert.Equal("memory_0000009", (await grain.Get()).MemoryCheckpoint!.Name);
        Assert.All(agents, a => Assert.True(a.MemoryTier!.Drops >= 1, "the memory checkpoint after the loss was not dropped"));

        hosts[1] = await StartHolderAsync("host-1-replaced");
        var epoch2 = await grain.StartAttempt();
        var (fresh, resumed) = await JoinAsync(run, epoch2, hosts, seed: 55);
        var results = await Task.WhenAll(resumed.Select(a => a.ResumeAsync()));

        Assert.All(results, r => Assert.Equal((ResumeResult.Memory, "memory_0000009", 10L), (r.Tier, r.Name, r.StartIteration)));
        Assert.All(fresh, model => Assert.True(ClusterRanks.SameWeights(model, atNine), "a rank's weights differ from the snapshot at iteration 9"));
        foreach (var agent in resumed) await agent.DisposeAsync();
    }

    [Fact]
    public async Task A_rank_that_reaches_its_first_memory_checkpoint_before_the_other_joined_waits_for_it_instead_of_dropping_the_checkpoint()
    {
        TestTenancy.ActAs(Tenant);
        var (run, grain) = await CreateAsync("memory-skew", new PeriodicPolicy(100, MaxIter: 30, MemoryPeriod: 10));
        var hosts = new[] { await StartHolderAsync("host-0"), await StartHolderAsync("host-1") };
        var epoch = await grain.StartAttempt();
        var models = hosts.Select(_ => ClusterRanks.Replica(seed: 3)).ToArray();
        // Rank 1 starts first and steps through memory_0000009 while rank 0 is still starting (as on a loaded machine).
        var early = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 1, 2, epoch, models[1], [], memoryTier: new MemoryTierOptions(hosts[1].Ref, _token));
        for (long iteration = 0; iteration < 10; iteration++) await early.StepAsync(iteration);
        var late = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 0, 2, epoch, models[0], [], memoryTier: new MemoryTierOptions(hosts[0].Ref, _token));
        for (long iteration = 0; iteration < 10; iteration++) await late.StepAsync(iteration);
        await Task.WhenAll(early.WaitForMemoryCheckpointAsync(), late.WaitForMemoryCheckpointAsync());

        Assert.Equal("memory_0000009", (await grain.Get()).MemoryCheckpoint?.Name);
        Assert.Equal((0, 1), (early.MemoryTier!.Drops, early.MemoryTier.Commits));
        Assert.Equal((0, 1), (late.MemoryTier!.Drops, late.MemoryTier.Commits));
        await early.DisposeAsync();
        await late.DisposeAsync();
    }

    [Fact]
    public async Task A_rank_that_drops_a_memory_checkpoint_before_reporting_it_abandons_it_so_the_other_rank_stops_waiting_at_once()
    {
        TestTenancy.ActAs(Tenant);
        var (run, grain) = await CreateAsync("memory-abandon", new PeriodicPolicy(100, MaxIter: 30, MemoryPeriod: 10));
        var hosts = new[] { await StartHolderAsync("host-0"), await StartHolderAsync("host-1") };
        var epoch = await grain.StartAttempt();
        var models = hosts.Select(_ => ClusterRanks.Replica(seed: 4)).ToArray();
        // Rank 0 would wait ten minutes for rank 1's report; rank 1 holds a token the holders refuse, so its puts fail and it never reports.
        var patient = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 0, 2, epoch, models[0], [],
            memoryTier: new MemoryTierOptions(hosts[0].Ref, _token) { CommitWait = TimeSpan.FromMinutes(10) });
        var failing = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 1, 2, epoch, models[1], [],
            memoryTier: new MemoryTierOptions(hosts[1].Ref, _token + "-forged"));
        for (long iteration = 0; iteration < 10; iteration++) await Task.WhenAll(patient.StepAsync(iteration), failing.StepAsync(iteration));
        await failing.WaitForMemoryCheckpointAsync();
        Assert.Equal(1, failing.MemoryTier!.Drops);

        // Bounded far below rank 0's ten minutes: only rank 1's abandonment can end its wait this soon.
        await Task.WhenAny(patient.WaitForMemoryCheckpointAsync(), Task.Delay(TimeSpan.FromMinutes(2)));
        Assert.True(patient.MemoryTier!.Drops == 1, "rank 0 was still waiting for a report rank 1 had dropped: the drop was not abandoned through the grain");
        Assert.Null((await grain.Get()).MemoryCheckpoint);
        await patient.DisposeAsync();
        await failing.DisposeAsync();
    }

    private async Task<(RunId Run, ITrainingRunGrain Grain)> CreateAsync(string name, PeriodicPolicy policy)
    {
        var run = await ClusterRanks.CreateRunAsync(fixture.Client, $"{name}-{Guid.NewGuid():N}"[..30], policy);
        return (run, fixture.Client.GetGrain<ITrainingRunGrain>(run.Key));
    }

    private async Task<HolderServer> StartHolderAsync(string host)
    {
        var holder = await HolderServer.StartAsync(new HolderOptions { TenantToken = _token, Host = host });
        _holders.Add(holder);
        return holder;
    }

    private async Task<(Sequential[] Models, RunAgent[] Agents)> JoinAsync(RunId run, long epoch, HolderServer[] hosts, long seed)
    {
        var models = hosts.Select(_ => ClusterRanks.Replica(seed)).ToArray();
        var agents = await Task.WhenAll(hosts.Select((host, rank) => RunAgent.JoinAsync(fixture.Client, run, fixture.Store, rank, hosts.Length, epoch, models[rank], [],
            memoryTier: new MemoryTierOptions(host.Ref, _token))));
        return (models, agents);
    }

    /// <summary>
    /// Trains every rank through <paramref name="iterations"/> steps; returns a copy of the weights after step <paramref name="committedAt"/>,
    /// once the checkpoint taken there (memory or durable) has committed.
    /// </summary>
    private static async Task<Sequential> TrainAsync(ITrainingRunGrain grain, Sequential[] models, RunAgent[] agents, long iterations, long committedAt,
        Func<long, Task>? afterStep = null)
    {
        Sequential? copy = null;
        for (long iteration = 0; iteration < iterations; iteration++)
        {
            Train(models, iteration);
            if (iteration == committedAt) copy = Copy(models[0]);
            var step = iteration;
            await Task.WhenAll(agents.Select(a => a.StepAsync(step)));
            if (iteration == committedAt && (await grain.Get()).Policy.IsMemoryStep(iteration)) await WaitForMemoryCheckpointAsync(grain, PeriodicPolicy.MemoryName(iteration));
            if (afterStep is not null) await afterStep(iteration);
        }
        return copy!;
    }

    /// <summary>A deterministic step: every rank's replica moves the same way, so the replicas stay equal.</summary>
    private static void Train(Sequential[] models, long iteration)
    {
        using var noGrad = no_grad();
        foreach (var model in models)
        {
            foreach (var parameter in model.parameters()) parameter.add_(0.001 * (iteration + 1));
        }
    }

    private static Sequential Copy(Sequential model)
    {
        var copy = ClusterRanks.Replica(seed: 0);
        copy.load_state_dict(model.state_dict());
        return copy;
    }

    /// <summary>Memory checkpoints commit in the background, off the step: waits until the run grain records <paramref name="name"/>.</summary>
    private static async Task WaitForMemoryCheckpointAsync(ITrainingRunGrain grain, string name)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while ((await grain.Get()).MemoryCheckpoint?.Name != name)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{name} never committed; the run records {(await grain.Get()).MemoryCheckpoint?.Name ?? "none"}");
            await Task.Delay(50);
        }
    }
}
