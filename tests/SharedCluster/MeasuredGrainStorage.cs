using System.Collections.Concurrent;
using Orleans.Serialization;
using Orleans.Storage;

namespace Checkpointing.TestSupport;

/// <summary>
/// Memory grain storage that also records, per grain and state name, how many state writes it got and
/// how large the last one was as Orleans serializes it: what a durable provider would write.
/// </summary>
public sealed class MeasuredGrainStorage(IGrainStorage inner, Serializer serializer) : IGrainStorage
{
    public static ConcurrentDictionary<(GrainId Grain, string State), (int Writes, int LastBytes)> Writes { get; } = new();

    public Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ReadStateAsync(stateName, grainId, grainState);

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var bytes = serializer.SerializeToArray(grainState.State).Length;
        await inner.WriteStateAsync(stateName, grainId, grainState);
        Writes.AddOrUpdate((grainId, stateName), (1, bytes), (_, seen) => (seen.Writes + 1, bytes));
    }

    public Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState) => inner.ClearStateAsync(stateName, grainId, grainState);
}
