using Checkpointing.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>A resumed run must continue exactly as if it had never stopped: same parameters, optimizer buffers and learning rates, bit for bit.</summary>
[Collection(TorchGlobalState.Name)]
public sealed class ResumeTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private sealed class Run
    {
        public readonly Sequential Model;
        public readonly optim.Optimizer Optimizer;
        public readonly optim.lr_scheduler.LRScheduler Scheduler;
        public readonly Checkpointer Checkpointer;

        public Run(string dir, string optimizer, long seed)
        {
            torch.manual_seed(seed);
            Model = nn.Sequential(nn.Linear(8, 32), nn.ReLU(), nn.Dropout(0.2), nn.Linear(32, 1));
            Optimizer = optimizer == "sgd"
                ? torch.optim.SGD(Model.parameters(), 0.05, momentum: 0.9, nesterov: true, weight_decay: 1e-4)
                : torch.optim.Adam(Model.parameters(), 0.01, amsgrad: true);
            Scheduler = torch.optim.lr_scheduler.StepLR(Optimizer, 3, 0.5);
            Checkpointer = new Checkpointer(Model, dir, true,
                [new("optimizer", Optimizer), new("scheduler", Scheduler), new("rng", new RngStateCheckpointable())]);
        }

        public void Train(long from, long to, PeriodicCheckpointer? periodic = null)
        {
            Model.train();
            for (var iteration = from; iteration < to; iteration++)
            {
                using var data = new torch.Generator((ulong)(1000 + iteration));
                var x = torch.rand([16, 8], generator: data);
                var y = x.sum(1, keepdim: true).sin();
                var loss = nn.functional.mse_loss(Model.call(x), y);
                Optimizer.zero_grad();
                loss.backward();
                Optimizer.step();
                Scheduler.step();
                periodic?.Step(iteration);
            }
        }
    }

    [Theory]
    [InlineData("sgd")]
    [InlineData("adam")]
    public void Resumed_training_equals_uninterrupted_training_bit_for_bit(string optimizer)
    {
        var reference = new Run(_dir.Sub("reference"), optimizer, seed: 7);
        reference.Train(0, 12);

        var first = new Run(_dir.Sub("resumed"), optimizer, seed: 7);
        first.Train(0, 6, new PeriodicCheckpointer(first.Checkpointer, period: 3));

        var second = new Run(_dir.Sub("resumed"), optimizer, seed: 12345);
        var extra = second.Checkpointer.ResumeOrLoad("", resume: true);
        var start = (long)extra["iteration"]! + 1;
        Assert.Equal(6, start);
        second.Train(start, 12);

        Models.AssertSameParameters(reference.Model, second.Model);
        Assert.Equal(reference.Optimizer.ParamGroups.Select(g => g.LearningRate), second.Optimizer.ParamGroups.Select(g => g.LearningRate));
        Assert.Equal(reference.Scheduler.get_last_lr(), second.Scheduler.get_last_lr());
        var expectedState = new OptimizerCheckpointable(reference.Optimizer).StateDict();
        var actualState = new OptimizerCheckpointable(second.Optimizer).StateDict();
        AssertSameTree(expectedState, actualState);
    }

    private static void AssertSameTree(object? expected, object? actual)
    {
        switch (expected)
        {
            case Tensor t: Assert.True(Models.BitEqual(t, Assert.IsAssignableFrom<Tensor>(actual))); break;
            case IDictionary<string, object?> d:
                var ad = Assert.IsAssignableFrom<IDictionary<string, object?>>(actual);
                Assert.Equal(d.Keys, ad.Keys);
                foreach (var (k, v) in d) AssertSameTree(v, ad[k]);
                break;
            case IList<object?> l:
                var al = Assert.IsAssignableFrom<IList<object?>>(actual);
                Assert.Equal(l.Count, al.Count);
                for (var i = 0; i < l.Count; i++) AssertSameTree(l[i], al[i]);
                break;
            default: Assert.Equal(expected, actual); break;
        }
    }

    [Fact]
    public void Optimizer_state_of_the_wrong_type_is_refused()
    {
        var sgd = new Run(_dir.Sub("a"), "sgd", 1);
        sgd.Train(0, 2);
        sgd.Checkpointer.Save("c");
        var adam = new Run(_dir.Sub("a"), "adam", 1);
        var e = Assert.Throws<InvalidDataException>(() => adam.Checkpointer.Load(Path.Combine(_dir.Sub("a"), "c")));
        Assert.Contains("SGD optimizer state, but the optimizer is Adam", e.Message);
    }

    [Fact]
    public void Corrupt_shard_fails_load_naming_shard_and_check_and_leaves_the_model_untouched()
    {
        var run = new Run(_dir.Path, "sgd", 3);
        run.Train(0, 2);
        run.Checkpointer.Save("c");
        var shard = Directory.GetFiles(_dir.Sub("c"), "shard-*").Single();
        var bytes = File.ReadAllBytes(shard);
        bytes[bytes.Length / 2] ^= 0x10;
        File.WriteAllBytes(shard, bytes);

        var fresh = new Run(_dir.Sub("other"), "sgd", 4);
        var before = fresh.Model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        var flipped = Assert.Throws<CheckpointFormatException>(() => fresh.Checkpointer.Load(_dir.Sub("c")));
        Assert.Equal("checksum", flipped.Check);
        Assert.Contains(Path.GetFileName(shard), flipped.Message);
        foreach (var (key, tensor) in fresh.Model.state_dict()) Assert.True(Models.BitEqual(before[key], tensor), key);

        using (var f = new FileStream(shard, FileMode.Open)) f.SetLength(f.Length / 3);
        var truncated = Assert.Throws<CheckpointFormatException>(() => fresh.Checkpointer.Load(_dir.Sub("c")));
        Assert.Equal("length", truncated.Check);
        Assert.Contains(Path.GetFileName(shard), truncated.Message);
        Assert.Contains("truncated", truncated.Message);
    }

    private sealed class CancelAfterFirstTensor(CancellationTokenSource cts) : IProgress<long>
    {
        public void Report(long value) => cts.Cancel();
    }

    [Fact]
    public async Task A_save_that_fails_midway_leaves_the_previous_checkpoint_tagged_and_nothing_visible()
    {
        var model = nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64));
        await new Checkpointer(model, _dir.Path).SaveAsync("good");
        using var cts = new CancellationTokenSource();
        var failing = new Checkpointer(model, _dir.Path) { WriteOptions = new NativeWriteOptions { Progress = new CancelAfterFirstTensor(cts) } };

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => failing.SaveAsync("bad", null, cts.Token));

        Assert.Equal(_dir.Sub("good"), failing.GetCheckpointFile());
        Assert.Equal([_dir.Sub("good")], failing.GetAllCheckpointFiles());
        Assert.False(File.Exists(Path.Combine(_dir.Sub("bad"), "manifest.json")));
        Assert.Empty(Directory.Exists(_dir.Sub("bad")) ? Directory.GetFiles(_dir.Sub("bad")) : []);
        new Checkpointer(nn.Sequential(nn.Linear(64, 64), nn.Linear(64, 64))).Load(failing.GetCheckpointFile());
    }
}

/// <summary>Tests that seed libtorch's global generator must not run in parallel with each other.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TorchGlobalState
{
    public const string Name = "torch global RNG";
}
