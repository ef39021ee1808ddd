using Checkpointing.Abstractions;
using Checkpointing.Core;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Lab;

/// <summary>
/// The demo's tensor-parallel job (<c>ckpt-lab job --sharded</c>, docs/format.md#sharded-tensors-and-resharding): a wide regression whose H outputs are
/// split across the ranks, each rank holding only its outputs' slices of every tensor: <c>w</c> [H, 16] by rows
/// (dimension 0), <c>v</c> [16, H] by columns (dimension 1), <c>b</c> [H] and the buffer <c>teacher</c> [H, 16] by
/// rows, and the replicated buffer <c>input_scale</c> [16] whole. Output r's loss and gradients depend on its own
/// row alone and on the shared batch, so ranks need no collective, and every element evolves exactly as in one
/// unsplit model (one rank of a world of one) whatever the number of ranks: a resume on another world size can be checked
/// bit for bit. The initial values are slices of one seeded global tensor per name.
/// </summary>
public sealed class ShardedTraining
{
    private const int Inputs = 16;
    /// <summary>
    /// One sample per step: a batch's weight gradient sums over its samples, and the CPU kernel's summation order depends
    /// on the slice's size (seen: last-bit differences between 3 and 4 ranks); with one sample every gradient is elementwise.
    /// </summary>
    private const int BatchSize = 1;
    private readonly long _seed;
    private readonly int _width;
    private readonly int _rank;
    private readonly int _worldSize;

    public ShardedTraining(long seed, int width, long iterations, int rank, int worldSize)
    {
        (_seed, _width, _rank, _worldSize) = (seed, width, rank, worldSize);
        using var generator = new torch.Generator((ulong)seed);
        Model = new Regressor(
            Slice("w", torch.randn([width, Inputs], generator: generator) * 0.1),
            Slice("v", torch.randn([Inputs, width], generator: generator) * 0.1),
            Slice("b", torch.zeros(width)),
            Slice("teacher", torch.randn([width, Inputs], generator: generator)),
            torch.ones(Inputs) * 0.5);
        Optimizer = torch.optim.SGD(Model.parameters(), 0.05, momentum: 0.9);
        Scheduler = torch.optim.lr_scheduler.StepLR(Optimizer, (int)Math.Max(1, iterations / 3), 0.5);
    }

    public nn.Module<Tensor, Tensor> Model { get; }
    public optim.Optimizer Optimizer { get; }
    public optim.lr_scheduler.LRScheduler Scheduler { get; }

    public IEnumerable<KeyValuePair<string, object>> Checkpointables => [new("optimizer", Optimizer), new("scheduler", Scheduler)];

    /// <summary>The part of each model tensor this rank holds, by state-dict name.</summary>
    public TensorLayout? Layout(string name) => name switch
    {
        "w" or "teacher" => TensorLayout.Split([_width, Inputs], 0, _rank, _worldSize),
        "v" => TensorLayout.Split([Inputs, _width], 1, _rank, _worldSize),
        "b" => TensorLayout.Split([_width], 0, _rank, _worldSize),
        _ => null,
    };

    private Tensor Slice(string name, Tensor global) => TorchTensors.SliceOf(global, Layout(name)!).contiguous().clone();

    /// <summary>One step on batch <paramref name="iteration"/> (the same batch on every rank); returns this rank's share of the loss.</summary>
    public double Step(long iteration)
    {
        using var scope = torch.NewDisposeScope();
        var x = DemoTraining.Batch(_seed, iteration, BatchSize, Inputs);
        return DemoTraining.Optimize(((Regressor)Model).Loss(x, BatchSize * _width), Optimizer, Scheduler);
    }

    /// <summary>
    /// Outputs p[b, r] = Σi s[b, i] (w[r, i] + v[i, r]) + b[r] with s = x · input_scale, against targets tanh(Σi s[b, i] teacher[r, i]).
    /// Every sum runs over the 16 contiguous inputs of one output, so a row computes the same bits in any slice (v's transpose is
    /// made contiguous first: summing a strided view takes another kernel path, whose bits differed).
    /// </summary>
    private sealed class Regressor : nn.Module<Tensor, Tensor>
    {
        private readonly Parameter _w;
        private readonly Parameter _v;
        private readonly Parameter _b;
        private readonly Tensor _teacher;
        private readonly Tensor _inputScale;

        public Regressor(Tensor w, Tensor v, Tensor b, Tensor teacher, Tensor inputScale) : base("regressor")
        {
            _w = new Parameter(w);
            _v = new Parameter(v);
            _b = new Parameter(b);
            (_teacher, _inputScale) = (teacher, inputScale);
            register_parameter("w", _w);
            register_parameter("v", _v);
            register_parameter("b", _b);
            register_buffer("teacher", _teacher);
            register_buffer("input_scale", _inputScale);
        }

        public override Tensor forward(Tensor x)
        {
            var s = (x * _inputScale).unsqueeze(1);
            return (s * _w.unsqueeze(0)).sum(-1) + (s * _v.t().contiguous().unsqueeze(0)).sum(-1) + _b;
        }

        /// <summary>Σ over this rank's outputs of the squared error, divided by batch × all outputs (so the gradient of each element is the unsplit one).</summary>
        public Tensor Loss(Tensor x, long divisor)
        {
            var target = ((x * _inputScale).unsqueeze(1) * _teacher.unsqueeze(0)).sum(-1).tanh();
            return (forward(x) - target).square().sum() / divisor;
        }
    }
}
