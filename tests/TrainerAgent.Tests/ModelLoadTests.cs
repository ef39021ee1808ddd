using Checkpointing.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.TrainerAgent.Tests;

/// <summary>Loading a native checkpoint copies its tensors into the model's own tensor objects, under fvcore's name rules.</summary>
public sealed class ModelLoadTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private Task Save(nn.Module model, string name, int shards = 1) =>
        new Checkpointer(model, _dir.Path) { WriteOptions = new NativeWriteOptions { ShardCount = shards } }.SaveAsync(name);

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task A_loaded_model_equals_the_saved_one_bit_for_bit_and_keeps_its_tensor_objects(int shards)
    {
        var saved = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 8));
        await Save(saved, "c", shards);
        var loaded = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.Linear(32, 8));
        var before = loaded.state_dict().ToDictionary(p => p.Key, p => p.Value);

        new Checkpointer(loaded).Load(_dir.Sub("c"));

        // Reading every tensor also proves none was disposed: the load frees only its own staging tensors.
        Models.AssertSameParameters(saved, loaded);
        foreach (var (key, tensor) in loaded.state_dict()) Assert.Same(before[key], tensor);
    }

    [Fact]
    public async Task A_checkpoint_of_another_dtype_is_converted_into_the_model()
    {
        var saved = Models.Small();
        saved.to(float64);
        await Save(saved, "f64");
        var loaded = Models.Small();

        new Checkpointer(loaded).Load(_dir.Sub("f64"));

        foreach (var (key, tensor) in loaded.state_dict())
        {
            Assert.Equal(ScalarType.Float32, tensor.dtype);
            Assert.True(tensor.allclose(saved.state_dict()[key].to(float32)), key);
        }
    }
}
