namespace Checkpointing.Grains;

/// <summary>
/// Serializes a grain's state writes and lets callers share them: a caller gets a write that starts
/// after its call (so it covers every change made before), and callers arriving while one write is
/// in flight share the next one. Used where calls interleave, so one write can cover many changes.
/// Runs on the grain's scheduler like the rest of the grain's code.
/// </summary>
internal sealed class GroupCommit(Func<Task> write)
{
    private Task _last = Task.CompletedTask;
    private Task? _queued;

    public Task WriteAsync()
    {
        if (_queued is { } queued) return queued;
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queued = done.Task;
        _ = RunAfterAsync(_last, done);
        return done.Task;
    }

    private async Task RunAfterAsync(Task previous, TaskCompletionSource done)
    {
        try { await previous; }
        catch { /* that write's callers saw its failure; this one writes the state again */ }
        // From here on the state may be read by this write: later changes need the next one.
        if (_queued == done.Task) _queued = null;
        try
        {
            var current = write();
            _last = current;
            await current;
            done.SetResult();
        }
        catch (Exception e)
        {
            done.SetException(e);
        }
    }
}
