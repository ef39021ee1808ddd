namespace Checkpointing.Formats;

/// <summary>What a load read: the tensor bytes its destinations hold, and the bytes it took from the store for them.</summary>
public sealed class LoadStatistics
{
    private long _needed;
    private long _read;

    public long BytesNeeded => Interlocked.Read(ref _needed);
    public long BytesRead => Interlocked.Read(ref _read);

    internal void Add(long needed, long read)
    {
        Interlocked.Add(ref _needed, needed);
        Interlocked.Add(ref _read, read);
    }
}
