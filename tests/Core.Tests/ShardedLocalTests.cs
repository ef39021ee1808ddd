using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>
/// Issue 11 in a local folder: a Checkpointer with <see cref="Checkpointer.ModelLayouts"/> loads only its slices from a
/// sharded checkpoint (or a whole one), refuses to save slices into a folder (one writer must hold every chunk), and
/// <c>compact</c> keeps an incremental sharded checkpoint sharded.
/// </summary>
public sealed class ShardedLocalTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static readonly long[] Weight = [6, 4];

    private static HostTensor Random(long[] shape, int seed)
    {
        var t = HostTensor.Allocate(TensorDType.F32, shape);
        var random = new Random(seed);
        for (var i = 0; i < t.Data.Length; i += 4) BitConverter.TryWriteBytes(t.Data.AsSpan(i), (float)random.NextDouble());
        return t;
    }

    /// <summary>Linear(4, 6)'s weight and bias as 3 row slices each (a 3-rank tensor-parallel save written at once).</summary>
    private async Task<(HostTensor Weight, HostTensor Bias)> WriteShardedAsync(string name, int seed, IReadOnlyList<EarlierCheckpoint>? reuseFrom = null)
    {
        var (weight, bias) = (Random(Weight, seed), Random([6], seed + 1));
        var model = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["weight"] = HostTensorSlice.Parts(weight, Enumerable.Range(0, 3).Select(r => TensorLayout.Split(Weight, 0, r, 3))),
            ["bias"] = HostTensorSlice.Parts(bias, Enumerable.Range(0, 3).Select(r => TensorLayout.Split([6], 0, r, 3))),
        };
        await NativeCheckpointWriter.WriteAsync(new FileSystemStore(_dir.Path), name, new CheckpointIdentity("local", name, 1, 3),
            new Dictionary<string, object?> { ["model"] = model }, v => v as ITensorSource, new NativeWriteOptions { ShardCount = 3, ReuseFrom = reuseFrom });
        return (weight, bias);
    }

    /// <summary>Rank 1 of 2, split by rows.</summary>
    private static TensorLayout? SecondHalf(string name) => name switch
    {
        "weight" => TensorLayout.Split(Weight, 0, 1, 2),
        "bias" => TensorLayout.Split([6], 0, 1, 2),
        _ => null,
    };

    private static void AssertRows(HostTensor expected, Tensor actual, long start, long count)
    {
        var size = 4 * expected.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        using var bytes = actual.detach().contiguous();
        Assert.True(bytes.bytes.SequenceEqual(expected.Data.AsSpan((int)(start * size), (int)(count * size)).ToArray()), "rows differ");
    }

    [Fact]
    public async Task A_rank_with_layouts_loads_only_its_rows_from_a_sharded_or_a_whole_checkpoint()
    {
        var (weight, bias) = await WriteShardedAsync("sharded", seed: 1);
        // Rank 1 of 2, split by rows: rows 3..5, which the 3 saved chunks (rows 0-1, 2-3, 4-5) cut across.
        var statistics = new LoadStatistics();
        var rank = new Checkpointer(nn.Linear(4, 3)) { ModelLayouts = SecondHalf, LoadStatistics = statistics };
        await rank.LoadAsync(_dir.Sub("sharded"));
        AssertRows(weight, rank.Model.state_dict()["weight"], 3, 3);
        AssertRows(bias, rank.Model.state_dict()["bias"], 3, 3);
        Assert.Equal((3 * 4 + 3) * 4, statistics.BytesNeeded);
        Assert.Equal(statistics.BytesNeeded, statistics.BytesRead);

        // A whole checkpoint (consolidated by a whole load and save) loads into the same slices.
        var whole = new Checkpointer(nn.Linear(4, 6), _dir.Sub("whole"));
        await whole.LoadAsync(_dir.Sub("sharded"));
        await whole.SaveAsync("model_final");
        var again = new Checkpointer(nn.Linear(4, 3)) { ModelLayouts = SecondHalf };
        await again.LoadAsync(_dir.Sub("whole/model_final"));
        AssertRows(weight, again.Model.state_dict()["weight"], 3, 3);
    }

    [Fact]
    public async Task A_local_save_of_one_ranks_slices_is_refused_before_writing_anything()
    {
        var rank = new Checkpointer(nn.Linear(4, 3), _dir.Sub("out")) { ModelLayouts = SecondHalf };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => rank.SaveAsync("model_0000009"));
        Assert.Contains("uncovered", error.Message);
        Assert.Contains("cluster mode", error.Message);
        Assert.Empty(Directory.EnumerateFiles(_dir.Sub("out"), "*.safetensors", SearchOption.AllDirectories));
    }

    [Fact]
    public async Task Compacting_an_incremental_sharded_checkpoint_keeps_it_sharded_and_equal()
    {
        await WriteShardedAsync("model_0000009", seed: 1);
        var run = await RunCheckpoints.ReadCommittedAsync(new FileSystemStore(_dir.Path), "");
        var (weight, bias) = await WriteShardedAsync("model_0000019", seed: 1, reuseFrom: run.Committed); // same values: every chunk reused
        var store = new FileSystemStore(_dir.Path);
        Assert.NotEmpty((await NativeCheckpointReader.ReadManifestAsync(store, "model_0000019")).ReusedFrom);

        Assert.NotNull(await new LocalBackend(_dir.Path, new() { Incremental = true }).CompactAsync("model_0000019"));
        var compacted = await NativeCheckpointReader.ReadManifestAsync(store, "model_0000019");
        Assert.Empty(compacted.ReusedFrom);
        Assert.Equal(3, compacted.Sharded["model/weight"].Chunks.Count);
        var loaded = (OrderedDictionary<string, object?>)(await NativeCheckpointReader.LoadAsync(store, "model_0000019", compacted, HostTensor.Allocator))["model"]!;
        Assert.Equal(weight.Data, ((HostTensor)loaded["weight"]!).Data);
        Assert.Equal(bias.Data, ((HostTensor)loaded["bias"]!).Data);
    }

    /// <summary>One parameter registered under two names, as tied embeddings are.</summary>
    private sealed class Tied : nn.Module
    {
        public Tied(Tensor value) : base(nameof(Tied))
        {
            var parameter = new TorchSharp.Modules.Parameter(value);
            register_parameter("embed", parameter);
            register_parameter("unembed", parameter);
        }
    }

    [Fact]
    public async Task Tied_weights_with_layouts_save_and_load()
    {
        // The layouts index parameters by handle; a second name of the same parameter must not break them.
        var model = new Tied(torch.randn(4, 4));
        var layouts = (string name) => TensorLayout.Split([4, 4], 0, 0, 1);
        await new Checkpointer(model, _dir.Sub("tied"), checkpointables: [new("optimizer", optim.SGD(model.parameters(), 0.1))]) { ModelLayouts = layouts }
            .SaveAsync("model_0000009");
        var loaded = new Tied(torch.zeros(4, 4));
        await new Checkpointer(loaded) { ModelLayouts = layouts }.LoadAsync(_dir.Sub("tied/model_0000009"));
        using var expected = model.state_dict()["embed"].detach().contiguous();
        using var actual = loaded.state_dict()["embed"].detach().contiguous();
        Assert.True(expected.bytes.SequenceEqual(actual.bytes));
    }
}
