using System.Text.Json.Nodes;
using Checkpointing.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent.Tests;

/// <summary>Loading a native checkpoint reads the model's tensors straight into the model's own memory, under fvcore's name rules.</summary>
public sealed class InPlaceLoadTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private async Task<Abstractions.CheckpointManifest> SaveAndReadManifest(nn.Module model, string name, int shards = 1)
    {
        await new Checkpointer(model, _dir.Path) { WriteOptions = new NativeWriteOptions { ShardCount = shards } }.SaveAsync(name);
        var (store, key) = NativeCheckpointFiles.Locate(_dir.Sub(name));
        return await NativeCheckpointReader.ReadManifestAsync(store, key);
    }

    [Fact]
    public async Task Every_model_tensor_is_placed_into_the_models_own_tensor()
    {
        var manifest = await SaveAndReadManifest(Models.Small(), "c");
        var target = Models.Small();
        var place = ModelPlacement.For(target, manifest);

        Assert.NotNull(place);
        foreach (var (name, tensor) in target.state_dict())
        {
            var placed = place($"model/{name}", TensorDType.F32, tensor.shape);
            Assert.True(placed.HasValue, name);
            Assert.Same(tensor, placed.Value.Value);
        }
        Assert.Null(place("model/0.weight", TensorDType.F64, [3, 2])); // another dtype: allocated and converted by copy_
        Assert.Null(place("model/0.weight", TensorDType.F32, [2, 3])); // another shape: fvcore skips it
        Assert.Null(place("optimizer/x", TensorDType.F32, [3]));
    }

    [Fact]
    public async Task A_DataParallel_checkpoint_is_placed_under_the_stripped_names()
    {
        var manifest = await SaveAndReadManifest(new Models.DataParallelLike(Models.Small()), "dp");
        var target = Models.Small();

        var place = ModelPlacement.For(target, manifest)!;

        Assert.Same(target.state_dict()["1.bias"], place("model/module.1.bias", TensorDType.F32, [1])!.Value.Value);
    }

    [Fact]
    public void A_checkpoint_asking_for_matching_heuristics_is_never_placed()
    {
        var manifest = new Abstractions.CheckpointManifest
        {
            FormatVersion = 1, Run = "r", Name = "c", WorldSize = 1, CreatedUtc = DateTimeOffset.UtcNow, Shards = [], Tensors = new Dictionary<string, Abstractions.TensorInfo>(),
            State = new JsonObject { ["model"] = new JsonObject { ["0.bias"] = new JsonObject { [StateTree.TensorMarker] = "model/0.bias" } }, ["matching_heuristics"] = true },
        };

        Assert.Null(ModelPlacement.For(Models.Small(), manifest));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task A_loaded_model_equals_the_saved_one_bit_for_bit_and_keeps_its_tensor_objects(int shards)
    {
        var saved = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 8));
        await SaveAndReadManifest(saved, "c", shards);
        var loaded = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 8));
        var before = loaded.state_dict().ToDictionary(p => p.Key, p => p.Value);

        new Checkpointer(loaded).Load(_dir.Sub("c"));

        // Reading every tensor also proves none was disposed: a placed tensor is the model's own, never freed after the load.
        Models.AssertSameParameters(saved, loaded);
        foreach (var (key, tensor) in loaded.state_dict()) Assert.Same(before[key], tensor);
    }

    [Fact]
    public async Task A_checkpoint_of_another_dtype_is_converted_into_the_model()
    {
        var saved = Models.Small();
        saved.to(float64);
        await SaveAndReadManifest(saved, "f64");
        var loaded = Models.Small();

        new Checkpointer(loaded).Load(_dir.Sub("f64"));

        foreach (var (key, tensor) in loaded.state_dict())
        {
            Assert.Equal(ScalarType.Float32, tensor.dtype);
            Assert.True(tensor.allclose(saved.state_dict()[key].to(float32)), key);
        }
    }
}
