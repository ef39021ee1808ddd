namespace Checkpointing.Formats;

/// <summary>What a load read: the tensor bytes its destinations hold, and the bytes it took from the store for them.</summary>
public sealed class LoadStatistics
{
    private long _needed;
    private long _read;

    /// <summary>
    /// Bytes of tensor data the loaded tensors hold, summed over the tensors read by byte range: every tensor of a load
    /// into layouts, and the sharded tensors of a whole load (tensors streamed out of whole shards are not counted).
    /// </summary>
    public long BytesNeeded => Interlocked.Read(ref _needed);

    /// <summary>
    /// Bytes read from the store for those tensors, shard headers not counted. More than <see cref="BytesNeeded"/> by the
    /// small gaps that merged reads span (see <see cref="SliceReader"/>).
    /// </summary>
    public long BytesRead => Interlocked.Read(ref _read);

    internal void Add(long needed, long read)
    {
        Interlocked.Add(ref _needed, needed);
        Interlocked.Add(ref _read, read);
    }
}
