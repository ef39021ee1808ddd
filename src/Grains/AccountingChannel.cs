using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

/// <summary>A grant the run commits against without asking its tenant; the expiry is counted from before the run asked.</summary>
internal sealed record TenantGrant(long? UpTo, DateTimeOffset ExpiresUtc)
{
    public bool Covers(long retainedBytes, DateTimeOffset now) => now < ExpiresUtc && (UpTo is null || retainedBytes <= UpTo);
}

/// <summary>
/// A run grain's side of its tenant's accounting: the grant it commits against, and its calls to the tenant, one at a
/// time and in order (a release must never overtake a later reserve). Reports are coalesced: while one is queued, later
/// changes ride on it. Runs on the grain's scheduler.
/// </summary>
internal sealed class AccountingChannel
{
    private Task _tail = Task.CompletedTask;
    private bool _reportQueued;
    private bool _releaseWanted;
    private long? _lastReported;
    private TenantGrant? _grant;
    /// <summary>Revocations answered: a grant that arrives after one is not kept.</summary>
    private int _revocations;
    /// <summary>What the run retains once the commit in flight lands (0 when none is): a revocation must not report less.</summary>
    private long _committingTo;

    /// <summary>
    /// Makes sure the tenant counts the run at <paramref name="retainedBytes"/> (what it retains once the commit in flight
    /// lands): under the grant it holds, asking the tenant only when that is short or its lease ended. Until
    /// <see cref="CommitEnded"/>, a revocation reports that amount.
    /// </summary>
    public async Task EnsureGrantAsync(ITenantAccounting tenant, string run, long retainedBytes, DateTimeOffset now)
    {
        _committingTo = retainedBytes;
        if (_grant is { } grant && grant.Covers(retainedBytes, now)) return;
        _grant = null;
        var revocations = _revocations;
        var granted = await Reserve(tenant, run, retainedBytes);
        // Revoked while the Reserve was under way: the tenant dropped this grant too, and counts this commit by the revocation's report.
        if (revocations == _revocations) _grant = new TenantGrant(granted.UpTo, now + granted.Lease);
    }

    /// <summary>The commit in flight landed (the run's retained bytes count it now) or failed.</summary>
    public void CommitEnded() => _committingTo = 0;

    /// <summary>
    /// The tenant drops every grant once its runs answer this and counts each run by its last report, so the report must
    /// be current; it counts a commit that already passed its check at what the run will retain once it lands. It goes at
    /// once, not behind the run's Reserve in flight: the tenant may be revoking while serving another run's Reserve, and
    /// that run's revocation may wait behind its own Reserve, which waits on this one (two runs each holding slack the
    /// other needs waited on each other until the calls timed out). A grant that Reserve brings back is not kept
    /// (<see cref="EnsureGrantAsync"/>), so the tenant at worst counts it until the run's next report or revocation, never less
    /// than the run holds. Calls made after this one still wait for it: a later Reserve grants anew.
    /// </summary>
    public Task RevokeAsync(ITenantAccounting tenant, string run, long retainedBytes)
    {
        _grant = null;
        _revocations++;
        var report = SendReportAsync(tenant, run, Math.Max(retainedBytes, _committingTo), release: true);
        _tail = RunAfterAsync(_tail, async () =>
        {
            await report;
            return true;
        });
        return report;
    }

    /// <summary>Gives the grant back in the background once its lease ended.</summary>
    public void ExpireGrant(ITenantAccounting tenant, string run, Func<long> retainedBytes, ILogger logger, DateTimeOffset now)
    {
        if (_grant is not { } grant || grant.ExpiresUtc > now) return;
        _grant = null;
        ReleaseSoon(tenant, run, retainedBytes, logger);
    }

    /// <summary>The run stops holding its grant (it deactivates or is deleted); true when it held one.</summary>
    public bool DropGrant()
    {
        var held = _grant is not null;
        _grant = null;
        return held;
    }

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
            await SendReportAsync(tenant, run, retainedBytes, release);
            return true;
        });

    /// <summary>One report to the tenant, now: what it last heard, and that no release is owed once one went.</summary>
    private async Task SendReportAsync(ITenantAccounting tenant, string run, long retainedBytes, bool release)
    {
        await tenant.Report(run, retainedBytes, release);
        _lastReported = retainedBytes;
        if (release) _releaseWanted = false;
    }

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
                await SendReportAsync(tenant, run, bytes, release);
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
