using Checkpointing.Formats;
using TorchSharp;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

/// <summary>
/// The CUDA path of the agent: device → pinned host arena → storage on save, storage → pinned staging
/// → device on load. Reported as skipped, with the reason, where no CUDA device is present;
/// scripts/gpu-check.sh runs them against TorchSharp's CUDA runtime and fails if any is skipped.
/// </summary>
[Trait("Category", "Gpu")]
public sealed class GpuTests : IDisposable
{
    private const string NoDevice = "no CUDA device here (TorchSharp-cpu build or no GPU): scripts/gpu-check.sh runs these on a GPU machine";
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    private static nn.Module OnDevice()
    {
        var model = nn.Sequential(nn.Linear(256, 128), nn.BatchNorm1d(128), nn.Linear(128, 10));
        model.to(CUDA);
        return model;
    }

    [SkippableTheory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_CUDA_model_saves_and_loads_back_bit_for_bit_and_stays_on_the_device(bool asyncSave)
    {
        Skip.IfNot(cuda.is_available(), NoDevice);
        var saved = OnDevice();
        var checkpointer = new Checkpointer(saved, _dir.Path) { AsyncSave = asyncSave, WriteOptions = new NativeWriteOptions { ShardCount = 2 } };
        await checkpointer.SaveAsync("c");
        await checkpointer.WaitForPendingSaveAsync();
        Assert.Equal(saved.state_dict().Values.Sum(t => t.numel() * t.ElementSize), checkpointer.SnapshotArenaBytes);

        var loaded = OnDevice();
        await new Checkpointer(loaded).LoadAsync(_dir.Sub("c"));

        foreach (var (key, tensor) in loaded.state_dict())
        {
            Assert.Equal(DeviceType.CUDA, tensor.device_type);
            Assert.True(Models.BitEqual(saved.state_dict()[key], tensor), key);
        }
    }

    [SkippableFact]
    public void Arena_slots_for_CUDA_tensors_are_pinned_host_memory()
    {
        Skip.IfNot(cuda.is_available(), NoDevice);
        using var arena = new SnapshotArena();
        var onDevice = rand(1024, device: CUDA);

        var copy = (Tensor)arena.Copy(new Dictionary<string, object?> { ["w"] = onDevice })["w"]!;

        Assert.Equal(DeviceType.CPU, copy.device_type);
        Assert.True(copy.is_pinned());
        Assert.True(Models.BitEqual(onDevice, copy));
    }

    [SkippableFact]
    public void A_tensor_filled_from_storage_through_pinned_staging_lands_on_the_device()
    {
        Skip.IfNot(cuda.is_available(), NoDevice);
        var destination = zeros(4096, device: CUDA);
        var source = rand(4096);
        var bytes = source.bytes.ToArray();

        new TorchTensorTarget(destination).FillAsync((memory, offset, _) =>
        {
            bytes.AsMemory((int)offset, memory.Length).CopyTo(memory);
            return Task.CompletedTask;
        }, CancellationToken.None).GetAwaiter().GetResult();

        Assert.Equal(DeviceType.CUDA, destination.device_type);
        Assert.True(Models.BitEqual(source, destination));
    }
}
