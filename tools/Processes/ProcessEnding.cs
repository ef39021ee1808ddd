using System.Diagnostics;

namespace Checkpointing.Processes;

/// <summary>Ending a process this program started, by its PID: SIGKILL (a machine failure) or SIGTERM with a grace period (a clean stop).</summary>
public static class ProcessEnding
{
    /// <summary>SIGKILL to the process and its children; returns once it has exited.</summary>
    public static async Task KillAsync(Process process)
    {
        if (process.HasExited) return;
        process.Kill(entireProcessTree: true);
        await process.WaitForExitAsync().ConfigureAwait(false);
    }

    /// <summary>SIGTERM, so that it shuts down cleanly; SIGKILL if it has not exited within <paramref name="grace"/>.</summary>
    public static async Task TerminateAsync(Process process, TimeSpan grace)
    {
        if (process.HasExited) return;
        using (var term = Process.Start("kill", ["-TERM", $"{process.Id}"]) ?? throw new InvalidOperationException("could not start kill"))
            await term.WaitForExitAsync().ConfigureAwait(false);
        using var timeout = new CancellationTokenSource(grace);
        try { await process.WaitForExitAsync(timeout.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { await KillAsync(process).ConfigureAwait(false); }
    }

    /// <summary>
    /// Kills <paramref name="process"/> (and its children) when this program exits first, on SIGTERM too (.NET raises
    /// <see cref="AppDomain.ProcessExit"/> for it), so that nothing it started outlives it; dispose once the process is ended.
    /// </summary>
    public static IDisposable KillWithThisProgram(Process process) => new ExitGuard(process);

    private sealed class ExitGuard : IDisposable
    {
        private readonly Process _process;

        public ExitGuard(Process process)
        {
            _process = process;
            AppDomain.CurrentDomain.ProcessExit += KillOnExit;
        }

        public void Dispose() => AppDomain.CurrentDomain.ProcessExit -= KillOnExit;

        private void KillOnExit(object? sender, EventArgs e)
        {
            try
            {
                if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            }
            catch (InvalidOperationException)
            {
                // already gone
            }
        }
    }
}
