using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>A grant the run commits against without asking its tenant; the expiry is counted from before the run asked.</summary>
internal sealed record TenantGrant(long? UpTo, DateTimeOffset ExpiresUtc)
{
    public bool Covers(long retainedBytes, DateTimeOffset now) => now < ExpiresUtc && (UpTo is null || retainedBytes <= UpTo);
}

/// <summary>
/// A run grain's calls to its tenant's accounting, one at a time and in order (a release must never
/// overtake a later reserve). Reports are coalesced: while one is queued, later changes ride on it.
/// Runs on the grain's scheduler.
/// </summary>
internal sealed class AccountingChannel
{
    private Task _tail = Task.CompletedTask;
    private bool _reportQueued;
    private bool _releaseWanted;
    private long? _lastReported;

    /// <summary>A grant replaces the run's previous one at the tenant, so a release still owed for that one is moot.</summary>
    public Task<RetainedBytesGrant> Reserve(ITenantAccounting tenant, string run, long retainedBytes) =>
        Enqueue(async () =>
        {
            var grant = await tenant.Reserve(run, retainedBytes);
            _releaseWanted = false;
            return grant;
        });

    public Task Report(ITenantAccounting tenant, string run, long retainedBytes, bool release) =>
        Enqueue(async () =>
        {
            await tenant.Report(run, retainedBytes, release);
            _lastReported = retainedBytes;
            return true;
        });

    /// <summary>Whether the tenant has yet to hear <paramref name="retainedBytes"/> (or a release).</summary>
    public bool ReportDue(long retainedBytes) => _releaseWanted || _lastReported != retainedBytes;

    /// <summary>Tells the tenant the run's retained bytes in the background, when they changed since the last report.</summary>
    public void ReportSoon(ITenantAccounting tenant, string run, Func<long> retainedBytes, ILogger logger)
    {
        if (_reportQueued || !ReportDue(retainedBytes())) return;
        _reportQueued = true;
        _ = Enqueue(async () =>
        {
            _reportQueued = false;
            var release = _releaseWanted;
            _releaseWanted = false;
            var bytes = retainedBytes();
            try
            {
                await tenant.Report(run, bytes, release);
                _lastReported = bytes;
            }
            catch (Exception e)
            {
                _releaseWanted |= release;
                logger.LogWarning(e, "Run {Run}: reporting retained bytes to the tenant failed; the next change reports again", run);
            }
            return true;
        });
    }

    /// <summary>Gives the grant back in the background (its lease ended), with the retained bytes.</summary>
    public void ReleaseSoon(ITenantAccounting tenant, string run, Func<long> retainedBytes, ILogger logger)
    {
        _releaseWanted = true;
        ReportSoon(tenant, run, retainedBytes, logger);
    }

    private Task<T> Enqueue<T>(Func<Task<T>> call)
    {
        var next = RunAfterAsync(_tail, call);
        _tail = next;
        return next;
    }

    private static async Task<T> RunAfterAsync<T>(Task previous, Func<Task<T>> call)
    {
        try { await previous; }
        catch { /* the earlier call's caller saw its failure */ }
        return await call();
    }
}
