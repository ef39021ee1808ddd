using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using Checkpointing.Core;
using Checkpointing.TrainerAgent;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Integration.Tests;

/// <summary>Ranks of a data-parallel job in one process: identical replicas (same seed), each with its own cluster checkpointer.</summary>
public static class ClusterRanks
{
    /// <summary>Weights from the test's own generator (<see cref="SeededWeights"/>): equal seeds give equal replicas even while other tests draw from libtorch's.</summary>
    public static Sequential Replica(long seed) =>
        // Four equally heavy layers: a by-bytes split over four ranks can give each about a quarter.
        SeededWeights.Fill(nn.Sequential(nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 10)), seed);

    public static async Task<RunId> CreateRunAsync(IGrainFactory grains, string name, PeriodicPolicy policy)
    {
        var run = new RunId("it", name);
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        await grain.Create(policy);
        return run;
    }

    public static Checkpointer Checkpointer(IGrainFactory grains, RunId run, ICheckpointStore store, int rank, int worldSize, long epoch, nn.Module model) =>
        new(model, new ClusterBackend(grains, run, store, rank, worldSize, epoch));

    public static bool SameWeights(nn.Module a, nn.Module b) =>
        a.state_dict().All(kv =>
        {
            using var x = kv.Value.detach().contiguous();
            using var y = b.state_dict()[kv.Key].detach().contiguous();
            return x.bytes.SequenceEqual(y.bytes);
        });
}
