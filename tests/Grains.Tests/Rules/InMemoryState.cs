namespace Checkpointing.Grains.Tests.Rules;

/// <summary>Grain state held in memory: what the run's rules read and change, with no storage behind it.</summary>
internal sealed class InMemoryState<T> : IPersistentState<T> where T : new()
{
    public T State { get; set; } = new();
    public string? Etag => null;
    public bool RecordExists => true;
    public int Writes { get; private set; }

    public Task WriteStateAsync()
    {
        Writes++;
        return Task.CompletedTask;
    }

    public Task ReadStateAsync() => Task.CompletedTask;

    public Task ClearStateAsync()
    {
        State = new T();
        return Task.CompletedTask;
    }
}
