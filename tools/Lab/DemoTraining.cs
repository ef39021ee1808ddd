using Checkpointing.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Lab;

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

    /// <param name="freeze">Fraction of the parameters to freeze, first layers first (detectron2's FREEZE_AT, or a
    /// frozen backbone under adapters): whole parameter tensors, until at least this fraction is frozen.</param>
    /// <param name="depth">Hidden width x width layers (the state grows by width² floats per layer).</param>
    public DemoTraining(long seed, int width, long iterations, double freeze = 0, int depth = 1)
    {
        _seed = seed;
        torch.manual_seed(seed);
        _teacher = torch.randn(Inputs, 1);
        var hidden = Enumerable.Range(0, depth).SelectMany(_ => new nn.Module<Tensor, Tensor>[] { nn.Linear(width, width), nn.ReLU() });
        Model = nn.Sequential([nn.Linear(Inputs, width), nn.ReLU(), .. hidden, nn.Linear(width, 1)]);
        FrozenFraction = Freeze(Model, freeze);
        Optimizer = torch.optim.SGD(Model.parameters().Where(p => p.requires_grad), 0.02, momentum: 0.9);
        Scheduler = torch.optim.lr_scheduler.StepLR(Optimizer, (int)Math.Max(1, iterations / 3), 0.5);
    }

    public Sequential Model { get; }

    /// <summary>The fraction of parameter elements actually frozen (whole tensors, so at least the fraction asked for).</summary>
    public double FrozenFraction { get; }

    private static double Freeze(Sequential model, double fraction)
    {
        var parameters = model.parameters().ToList();
        var total = parameters.Sum(p => p.numel());
        long frozen = 0;
        foreach (var parameter in parameters.TakeWhile(_ => frozen < fraction * total))
        {
            parameter.requires_grad = false;
            frozen += parameter.numel();
        }
        return (double)frozen / total;
    }
    public optim.Optimizer Optimizer { get; }
    public optim.lr_scheduler.LRScheduler Scheduler { get; }

    public IEnumerable<KeyValuePair<string, object>> Checkpointables =>
        [new("optimizer", Optimizer), new("scheduler", Scheduler), new("rng", new RngStateCheckpointable())];

    /// <summary>One optimisation step on batch <paramref name="iteration"/>; returns the loss.</summary>
    public double Step(long iteration)
    {
        using var scope = torch.NewDisposeScope();
        var x = Batch(_seed, iteration, BatchSize, Inputs);
        var y = (x.matmul(_teacher) * 0.5).tanh();
        return Optimize(nn.functional.mse_loss(Model.call(x), y), Optimizer, Scheduler);
    }

    /// <summary>Batch <paramref name="iteration"/>: drawn from seed + iteration alone, so a resumed run sees the data an uninterrupted one would.</summary>
    internal static Tensor Batch(long seed, long iteration, int rows, int inputs)
    {
        using var generator = new torch.Generator((ulong)(seed * 1_000_003 + iteration));
        return torch.randn([rows, inputs], generator: generator);
    }

    /// <summary>One optimizer and scheduler step on <paramref name="loss"/>; returns the loss.</summary>
    internal static double Optimize(Tensor loss, optim.Optimizer optimizer, optim.lr_scheduler.LRScheduler scheduler)
    {
        optimizer.zero_grad();
        loss.backward();
        optimizer.step();
        scheduler.step();
        return loss.item<float>();
    }
}
