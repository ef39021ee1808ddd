using Checkpointing.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

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

    /// <summary>A module whose buffer is a view into a larger tensor, as a flattened parameter buffer would be.</summary>
    private sealed class ViewOfFlat : nn.Module
    {
        public Tensor Flat { get; } = zeros(12);

        public ViewOfFlat() : base(nameof(ViewOfFlat)) => register_buffer("part", Flat[..6].view(2, 3));
    }

    private sealed class Plain : nn.Module
    {
        public Plain(float value) : base(nameof(Plain)) => register_buffer("part", full(2, 3, value));
    }

    [Fact]
    public async Task A_model_tensor_that_views_a_larger_buffer_is_written_through_to_that_buffer()
    {
        await Save(new Plain(7), "plain");
        var loaded = new ViewOfFlat();

        new Checkpointer(loaded).Load(_dir.Sub("plain"));

        Assert.Equal(Enumerable.Repeat(7f, 6).Concat(Enumerable.Repeat(0f, 6)), loaded.Flat.data<float>().ToArray());
    }

    [Fact]
    public void Tensors_the_caller_keeps_are_copied_never_shared_with_the_model()
    {
        var model = nn.Sequential(nn.Linear(4, 4));
        using var weight = rand(4, 4);
        using var expected = weight.clone();

        ModelStateLoader.Load(model, new Dictionary<string, object?> { ["0.weight"] = weight, ["0.bias"] = zeros(4) });
        using (no_grad()) weight.add_(1);

        Assert.True(Models.BitEqual(expected, model.state_dict()["0.weight"]));
    }

    [Fact]
    public void One_loaded_tensor_under_two_names_loads_into_two_untied_tensors()
    {
        var model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4));
        using var weight = rand(4, 4);
        using var expected = weight.clone();
        var state = new Dictionary<string, object?> { ["0.weight"] = weight, ["0.bias"] = zeros(4), ["1.weight"] = weight, ["1.bias"] = zeros(4) };

        ModelStateLoader.Load(model, state, takeOwnership: true);

        var (first, second) = (model.state_dict()["0.weight"], model.state_dict()["1.weight"]);
        Assert.True(Models.BitEqual(expected, first), "first");
        Assert.True(Models.BitEqual(expected, second), "second");
        using (no_grad()) first.add_(1);
        Assert.True(Models.BitEqual(expected, second), "changing one loaded tensor changed the other");
    }
}
