using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using Xunit.Abstractions;

namespace Checkpointing.Integration.Tests;

/// <summary>Two ranks stepping through training with RunAgent: the grain's policy drives saves, and a checkpoint-now request is honoured by both ranks at the same iteration.</summary>
[Collection(nameof(Cluster))]
public sealed class RunAgentTests(TwoSiloCluster fixture)
{
    [Fact]
    public async Task Ranks_follow_the_grain_policy_and_checkpoint_now_at_an_agreed_iteration()
    {
        TestTenancy.ActAs("it");
        var run = await ClusterRanks.CreateRunAsync(fixture.Client, "agent", new PeriodicPolicy(10, MaxIter: 30, MaxToKeep: 2));
        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        var agents = await Task.WhenAll(Enumerable.Range(0, 2).Select(rank =>
            RunAgent.JoinAsync(fixture.Client, run, fixture.Store, rank, 2, epoch, ClusterRanks.Replica(seed: 8), [])));
        Assert.All(agents, a => Assert.Equal(10, a.Policy.Period));
        var saved = agents.Select(a =>
        {
            var names = new List<string>();
            a.Checkpointer.Saved += names.Add;
            return names;
        }).ToList();

        for (long iteration = 0; iteration < 30; iteration++)
        {
            if (iteration == 13) await grain.RequestCheckpointNow("preemption notice");
            if (iteration == 20) await grain.SetPolicy(new PeriodicPolicy(5, MaxIter: 30, MaxToKeep: 2));
            var step = iteration;
            await Task.WhenAll(agents.Select(a => a.StepAsync(step)));
        }

        List<string> expectedSaves = ["model_0000009", "model_0000015", "model_0000019", "model_0000024", "model_0000029", "model_final"];
        Assert.All(saved, names => Assert.Equal(expectedSaves, names));
        var names = (await grain.ListCheckpoints()).Select(c => c.Name).ToList();
        // Periodic 9, 19; checkpoint-now at 13 + 2 = 15; period 5 from iteration 20: 24, 29; final; max_to_keep 2 over periodic ones.
        Assert.Equal(["model_0000024", "model_0000029", "model_final"], names);
        Assert.Equal("model_final", (await grain.GetLastCheckpoint())!.Name);
        Assert.Null((await grain.Get()).CheckpointRequest);
        Assert.All(agents, a => Assert.Equal(5, a.Policy.Period));
    }
}

/// <summary>A rank whose cluster goes away mid-training waits for it in its step instead of failing the process.</summary>
public sealed class UnreachableClusterTests
{
    [Fact]
    public async Task A_step_while_the_only_silo_is_down_waits_for_its_replacement_and_training_goes_on()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var clusterId = $"unreachable-{Guid.NewGuid():N}";
        await using var silo = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey);
        await using var connection = await ClusterConnection.ConnectAsync(new ClusterConnectionOptions
        {
            Gateways = [$"127.0.0.1:{silo.GatewayPort}"],
            ClusterId = clusterId,
            TenantToken = TestTenancy.Token("it"),
        });
        var store = AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints");
        var run = new RunId("it", "unreachable");
        var grain = connection.Client.GetGrain<ITrainingRunGrain>(run.Key);
        await grain.Create(new PeriodicPolicy(5, MaxIter: 10));
        var agent = await RunAgent.JoinAsync(connection.Client, run, store, 0, 1, await grain.StartAttempt(), ClusterRanks.Replica(seed: 3), []);
        await agent.StepAsync(0);

        // Chaos found agents dying on one failed directive call while their silo was away.
        silo.Kill();
        var step = agent.StepAsync(1);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.False(step.IsCompleted, step.Exception?.GetBaseException().Message ?? "the step completed without the cluster");
        await using var replacement = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey,
            ports: (silo.SiloPort, silo.GatewayPort, silo.HealthPort));
        await step.WaitAsync(TimeSpan.FromMinutes(3));
        for (long iteration = 2; iteration < 10; iteration++) await agent.StepAsync(iteration).WaitAsync(TimeSpan.FromMinutes(3));

        Assert.Equal(["model_0000004", "model_0000009", "model_final"], (await grain.ListCheckpoints()).Select(c => c.Name));
    }
}

/// <summary>Heartbeats: what a run grain learns from its ranks between commits, and what it costs.</summary>
[Collection(nameof(Cluster))]
public sealed class HeartbeatTests(TwoSiloCluster fixture, ITestOutputHelper output)
{
    /// <summary>Issue 29's budget: the heartbeat adds no state write per step. 1,000 steps with beats every 5 ms (a thousand times the default rate).</summary>
    [Fact]
    public async Task A_thousand_steps_with_heartbeats_write_no_run_state_and_the_run_reads_healthy_with_the_last_loss()
    {
        TestTenancy.ActAs("it");
        var run = await ClusterRanks.CreateRunAsync(fixture.Client, "beats", new PeriodicPolicy(1_000_000));
        var grain = fixture.Client.GetGrain<ITrainingRunGrain>(run.Key);
        var epoch = await grain.StartAttempt();
        await using var agent = await RunAgent.JoinAsync(fixture.Client, run, fixture.Store, 0, 1, epoch, ClusterRanks.Replica(seed: 4), [],
            heartbeatInterval: TimeSpan.FromMilliseconds(5));
        var before = StateWrites(grain);

        for (long iteration = 0; iteration < 1_000; iteration++) await agent.StepAsync(iteration, new Dictionary<string, object?> { ["loss"] = 1.0 / (iteration + 1) });
        RunHealthView health;
        using (var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30)))
        {
            while ((health = (await grain.Get()).Health!).Iteration != 999) await Task.Delay(20, patience.Token);
        }

        var writes = StateWrites(grain) - before;
        output.WriteLine($"run grain state writes during 1,000 steps: {writes}; progress points kept: {(await grain.GetProgress()).Count}");
        Assert.Equal(0, writes);
        Assert.Equal(RunHealth.Healthy, health.State);
        Assert.Equal(1.0 / 1000, health.Loss);
        Assert.Equal(999, (await grain.GetSummary()).Iteration);
        Assert.Contains(await grain.GetProgress(), point => point.Iteration == 999);
    }

    private static int StateWrites(ITrainingRunGrain grain) =>
        MeasuredGrainStorage.Writes.Where(w => w.Key.Grain == grain.GetGrainId()).Sum(w => w.Value.Writes);
}
