using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// Runs a run grain's owed deletions after the acknowledgement, a pass at a time, on the grain's
/// scheduler. An entry leaves the owed list only when its deletion finished; the list is saved with
/// the next state write, so a crash before that repeats deletions (they are idempotent), never skips one.
/// </summary>
internal sealed class BackgroundDeletions
{
    private Task _pass = Task.CompletedTask;
    private HashSet<string> _prefixes = [];

    /// <summary>Starts a pass over <paramref name="owed"/> unless one is running (the sweep starts the next).</summary>
    public void Start(List<PendingDeletion> owed, Func<PendingDeletion, Task> delete, ILogger logger, RunId run)
    {
        if (!_pass.IsCompleted || owed.Count == 0) return;
        var batch = owed.ToList();
        _prefixes = batch.Select(d => d.CheckpointPrefix).ToHashSet(StringComparer.Ordinal);
        _pass = RunAsync(owed, batch, delete, logger, run);
    }

    /// <summary>Waits for the running pass if it touches <paramref name="prefix"/> (any pass when null); its failures are the pass's to log.</summary>
    public async Task WaitForAsync(string? prefix)
    {
        if (_pass.IsCompleted || (prefix is not null && !_prefixes.Contains(prefix))) return;
        try { await _pass; }
        catch { /* logged by the pass */ }
    }

    private static async Task RunAsync(List<PendingDeletion> owed, List<PendingDeletion> batch, Func<PendingDeletion, Task> delete, ILogger logger, RunId run)
    {
        await Task.Yield(); // the acknowledgement goes out first
        foreach (var chunk in batch.Chunk(16))
        {
            await Task.WhenAll(chunk.Select(async deletion =>
            {
                try
                {
                    await delete(deletion);
                    owed.Remove(deletion);
                }
                catch (Exception e)
                {
                    logger.LogWarning(e, "Run {Run}: deleting {Prefix} failed; the sweep retries", run, deletion.CheckpointPrefix);
                }
            }));
        }
    }
}
