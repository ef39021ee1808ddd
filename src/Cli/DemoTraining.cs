using Checkpointing.TrainerAgent;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Cli;

/// <summary>
/// The demo's training job: an MLP regressing a fixed random function on synthetic batches. Batch
/// i is generated from seed + i, so a resumed run sees exactly the data an uninterrupted one would.
/// </summary>
public sealed class DemoTraining
{
    private const int Inputs = 16;
    private const int BatchSize = 32;
    private readonly long _seed;
    private readonly Tensor _teacher;

    public DemoTraining(long seed, int width, long iterations)
    {
        _seed = seed;
        torch.manual_seed(seed);
        _teacher = torch.randn(Inputs, 1);
        Model = nn.Sequential(nn.Linear(Inputs, width), nn.ReLU(), nn.Linear(width, width), nn.ReLU(), nn.Linear(width, 1));
        Optimizer = torch.optim.SGD(Model.parameters(), 0.02, momentum: 0.9);
        Scheduler = torch.optim.lr_scheduler.StepLR(Optimizer, (int)Math.Max(1, iterations / 3), 0.5);
    }

    public Sequential Model { get; }
    public optim.Optimizer Optimizer { get; }
    public optim.lr_scheduler.LRScheduler Scheduler { get; }

    public IEnumerable<KeyValuePair<string, object>> Checkpointables =>
        [new("optimizer", Optimizer), new("scheduler", Scheduler), new("rng", new RngStateCheckpointable())];

    /// <summary>One optimisation step on batch <paramref name="iteration"/>; returns the loss.</summary>
    public double Step(long iteration)
    {
        using var scope = torch.NewDisposeScope();
        using var generator = new torch.Generator((ulong)(_seed * 1_000_003 + iteration));
        var x = torch.randn([BatchSize, Inputs], generator: generator);
        var y = (x.matmul(_teacher) * 0.5).tanh();
        var loss = nn.functional.mse_loss(Model.call(x), y);
        Optimizer.zero_grad();
        loss.backward();
        Optimizer.step();
        Scheduler.step();
        return loss.item<float>();
    }
}
