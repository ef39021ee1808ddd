using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>
/// Keeps a run's tenant told what the run retains, off the commit path: a change arms a grain timer, and when it fires
/// the retained bytes go through the <see cref="AccountingChannel"/> (later changes ride on a queued report).
/// </summary>
internal sealed class TenantReporter(IGrainBase grain, AccountingChannel accounting, Func<ITenantAccounting> tenant, string run,
    Func<long> retainedBytes, TimeSpan delay, ILogger logger)
{
    private IGrainTimer? _timer;

    /// <summary>Arms the report unless it is armed or the tenant already counts the current bytes.</summary>
    public void Changed()
    {
        if (accounting.ReportDue(retainedBytes()))
            _timer ??= grain.RegisterGrainTimer(FireAsync, new GrainTimerCreationOptions(delay, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = false });
    }

    private Task FireAsync(CancellationToken cancellationToken)
    {
        Cancel();
        accounting.ReportSoon(tenant(), run, retainedBytes, logger);
        return Task.CompletedTask;
    }

    /// <summary>Disarms the delayed report; true when one was due.</summary>
    public bool Cancel()
    {
        if (_timer is not { } timer) return false;
        timer.Dispose();
        _timer = null;
        return true;
    }

    /// <summary>The tenant revokes grants: the report it needs goes now, not after the delay.</summary>
    public Task RevokeAsync()
    {
        Cancel();
        return accounting.RevokeAsync(tenant(), run, retainedBytes());
    }

    /// <summary>The activation ends: a due report goes now, giving back the grant it held.</summary>
    public async Task DeactivatingAsync()
    {
        var release = accounting.DropGrant();
        if (!Cancel() && !release) return;
        try { await accounting.Report(tenant(), run, retainedBytes(), release); }
        catch (Exception e) { logger.LogWarning(e, "Run {Run}: giving back the retained-bytes grant failed; the tenant keeps counting it until the run reports again", run); }
    }
}
