namespace Checkpointing.Formats;

/// <summary>
/// Passes reports on one at a time: shards written in parallel report from several threads, and a
/// caller's <see cref="IProgress{T}"/> (a running total, a progress bar) need not be thread-safe.
/// </summary>
internal sealed class SerializedProgress(IProgress<long> inner) : IProgress<long>
{
    private readonly Lock _lock = new();

    public void Report(long value)
    {
        lock (_lock) inner.Report(value);
    }
}
