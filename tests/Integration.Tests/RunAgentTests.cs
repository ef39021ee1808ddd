using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent.Cluster;

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
