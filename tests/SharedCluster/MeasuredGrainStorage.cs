using System.Collections.Concurrent;
using Orleans.Serialization;
using Orleans.Storage;

namespace Checkpointing.TestSupport;

/// <summary>
/// Memory grain storage that also records, per grain and state name, how many state writes it got and
/// how large the last one was as Orleans serializes it: what a durable provider would write; a test can make one write fail.
/// </summary>
public sealed class MeasuredGrainStorage(IGrainStorage inner, Serializer serializer) : IGrainStorage
{
    public static ConcurrentDictionary<(GrainId Grain, string State), (int Writes, int LastBytes)> Writes { get; } = new();

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

    private static readonly ConcurrentDictionary<(GrainId Grain, string State), (TaskCompletionSource Reached, Task Release)> Faults = new();

    /// <summary>
    /// The next write of that state of that grain waits for <paramref name="release"/> and then fails without writing;
    /// the returned task completes when that write has started.
    /// </summary>
    public static Task FailNextWrite(GrainId grain, string state, Task release)
    {
        var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Faults[(grain, state)] = (reached, release);
        return reached.Task;
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (Faults.TryRemove((grainId, stateName), out var fault))
        {
            fault.Reached.SetResult();
            await fault.Release;
            throw new IOException($"injected fault: the write of {grainId}'s {stateName} state failed");
        }
        var bytes = serializer.SerializeToArray(grainState.State).Length;
        await inner.WriteStateAsync(stateName, grainId, grainState);
        Writes.AddOrUpdate((grainId, stateName), (1, bytes), (_, seen) => (seen.Writes + 1, bytes));
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
}
