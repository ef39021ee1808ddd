using Checkpointing.Abstractions;
using Checkpointing.Formats;
using static TorchSharp.torch;

namespace Checkpointing.Core.Tests;

public sealed class AsyncSaveTests : IDisposable
{
    private readonly TempDir _dir = new();

    public void Dispose() => _dir.Dispose();

    /// <summary>The real local backend behind a gate the test opens, so "still writing" is observable; or one that fails the write.</summary>
    private sealed class GatedBackend(LocalBackend inner, bool fail = false) : ICheckpointBackend
    {
        public TaskCompletionSource Gate { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public string PathOf(string name) => inner.PathOf(name);
        public bool AppliesRetention => inner.AppliesRetention;
        public bool Incremental => inner.Incremental;

        public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null)
        {
            await Gate.Task;
            if (fail) throw new IOException("storage went away");
            await inner.SaveAsync(name, iteration, data, options, cancellationToken);
        }

        public Task<string?> GetLastAsync(CancellationToken cancellationToken) => inner.GetLastAsync(cancellationToken);
        public Task TagLastAsync(string name, CancellationToken cancellationToken) => inner.TagLastAsync(name, cancellationToken);
        public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) => inner.ListAsync(cancellationToken);
        public Task<bool> DeleteAsync(string name, CancellationToken cancellationToken) => inner.DeleteAsync(name, cancellationToken);
        public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) => inner.ResolveAsync(path, cancellationToken);
    }

    [Fact]
    public async Task Save_returns_after_the_snapshot_and_the_checkpoint_holds_the_weights_of_that_moment()
    {
        var model = Models.Small();
        var backend = new GatedBackend(new LocalBackend(_dir.Path));
        var checkpointer = new Checkpointer(model, backend) { AsyncSave = true };
        var atSave = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        await checkpointer.SaveAsync("c", new Dictionary<string, object?> { ["iteration"] = 1L });
        Assert.True(checkpointer.IsSavePending);
        Assert.False(checkpointer.HasCheckpoint());
        using (no_grad()) foreach (var p in model.parameters()) p.add_(1.0); // training goes on meanwhile

        backend.Gate.SetResult();
        await checkpointer.WaitForPendingSaveAsync();
        Assert.Equal(_dir.Sub("c"), checkpointer.GetCheckpointFile());
        var restored = Models.Small();
        new Checkpointer(restored).Load(_dir.Sub("c"));
        foreach (var (key, tensor) in restored.state_dict()) Assert.True(Models.BitEqual(atSave[key], tensor), key);
    }

    [Fact]
    public async Task The_next_save_waits_for_the_previous_one()
    {
        var backend = new GatedBackend(new LocalBackend(_dir.Path));
        var checkpointer = new Checkpointer(Models.Small(), backend) { AsyncSave = true };
        await checkpointer.SaveAsync("first");
        var second = checkpointer.SaveAsync("second");
        await Task.Delay(200);
        Assert.False(second.IsCompleted);
        backend.Gate.SetResult();
        await second;
        await checkpointer.WaitForPendingSaveAsync();
        Assert.Equal([_dir.Sub("first"), _dir.Sub("second")], checkpointer.GetAllCheckpointFiles());
    }

    [Fact]
    public async Task A_failed_background_save_is_reported_and_never_tagged()
    {
        var good = new Checkpointer(Models.Small(), _dir.Path);
        good.Save("good");
        var backend = new GatedBackend(new LocalBackend(_dir.Path), fail: true);
        var logger = new ListLogger();
        var checkpointer = new Checkpointer(Models.Small(), backend, logger: logger) { AsyncSave = true };
        await checkpointer.SaveAsync("doomed");
        backend.Gate.SetResult();

        var e = await Assert.ThrowsAsync<CheckpointSaveFailedException>(() => checkpointer.SaveAsync("next"));
        Assert.Contains("storage went away", e.Message);
        Assert.Contains(logger.At(Microsoft.Extensions.Logging.LogLevel.Error), m => m.Contains("doomed"));
        Assert.Equal(_dir.Sub("good"), checkpointer.GetCheckpointFile());
        Assert.Equal([_dir.Sub("good")], checkpointer.GetAllCheckpointFiles());
    }

    [Fact]
    public async Task The_snapshot_arena_is_allocated_once_and_reused_by_later_saves()
    {
        var model = nn.Sequential(nn.Linear(32, 16), nn.Linear(16, 4));
        var stateBytes = model.state_dict().Values.Sum(t => t.numel() * t.ElementSize);
        var checkpointer = new Checkpointer(model, _dir.Path) { AsyncSave = true };
        Assert.Equal(0, checkpointer.SnapshotArenaBytes);

        for (var i = 0; i < 3; i++)
        {
            using (no_grad()) foreach (var p in model.parameters()) p.add_(1.0);
            await checkpointer.SaveAsync($"c{i}");
            await checkpointer.WaitForPendingSaveAsync();
            Assert.Equal(stateBytes, checkpointer.SnapshotArenaBytes);
            var restored = nn.Sequential(nn.Linear(32, 16), nn.Linear(16, 4));
            new Checkpointer(restored).Load(_dir.Sub($"c{i}"));
            Models.AssertSameParameters(model, restored); // each save holds its own moment, though the memory is reused
        }
    }

    [Fact]
    public async Task With_skip_a_save_while_the_previous_is_writing_is_skipped_with_a_warning()
    {
        var backend = new GatedBackend(new LocalBackend(_dir.Path));
        var logger = new ListLogger();
        var checkpointer = new Checkpointer(Models.Small(), backend, logger: logger) { AsyncSave = true, WhenSaveBusy = BusySavePolicy.Skip };
        await checkpointer.SaveAsync("first");

        await checkpointer.SaveAsync("second").WaitAsync(TimeSpan.FromSeconds(30)); // returns at once: nothing to wait for

        Assert.Contains(logger.At(Microsoft.Extensions.Logging.LogLevel.Warning), m => m.Contains("second"));
        backend.Gate.SetResult();
        await checkpointer.WaitForPendingSaveAsync();
        Assert.Equal([_dir.Sub("first")], checkpointer.GetAllCheckpointFiles());
    }
}
