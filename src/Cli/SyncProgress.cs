namespace Checkpointing.Cli;

/// <summary>Reports on the calling thread (Progress&lt;T&gt; would post to the thread pool and reorder output).</summary>
public sealed class SyncProgress(Action<long> report) : IProgress<long>
{
    /// <summary>Passes <paramref name="value"/> to the callback at once, on the reporting thread.</summary>
    public void Report(long value) => report(value);
}
