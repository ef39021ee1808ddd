using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

/// <summary>
/// A tenant's runs and limits. A commit that would take the tenant past its retained-bytes limit
/// is refused (not evicted): silently deleting another run's checkpoints would be worse than a
/// clear error the job can act on.
/// <para>
/// The tenant is off the commit path: each run commits against a grant (at least what it retains
/// after the commit, at most twice that), asking again only when it needs more or its lease ended.
/// A run counts as max(reported retained, granted), and grants are made only while the sum stays
/// within the limit, so the tenant never goes over its limit through commits. A grant is written
/// before it is given; retained-bytes reports are written lazily (a lost report leaves the grant
/// counted, which errs on the safe side). When an operator lowers the limit, runs' grants are
/// revoked, each run reporting what it retains as it answers: only commits already past their check
/// can still land (at most one checkpoint per run).
/// </para>
/// Accounting members are reachable from run grains only (the call filter refuses clients) and still check their arguments.
/// </summary>
internal sealed class TenantGrain(
    [PersistentState("tenant", GrainStorage.Tenants)] IPersistentState<TenantState> state,
    IOptions<TenancyOptions> options,
    SiloMetrics metrics,
    ILogger<TenantGrain> logger) : Grain, ITenantGrain, ITenantAccounting
{
    private TenantState S => state.State;
    private TenantLimits Limits => S.LimitsSet ? S.Limits : options.Value.DefaultLimits;
    private string Tenant => this.GetPrimaryKeyString();
    private GroupCommit _writer = null!;
    private bool _dirty;

    /// <summary>Starts the timer that saves the retained bytes runs reported, every <see cref="TenancyOptions.ReportFlushPeriod"/>; lists a tenant from before the directory.</summary>
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _writer = new GroupCommit(() => state.WriteStateAsync());
        var period = options.Value.ReportFlushPeriod;
        this.RegisterGrainTimer(FlushReportsAsync, new GrainTimerCreationOptions(period, period) { Interleave = true, KeepAlive = false });
        if (S.RetainedBytesByRun.Count > 0) await EnsureListedAsync();
    }

    /// <summary>Saves reported retained bytes not yet written; a failure is logged, not thrown (the grants saved stay counted).</summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try { await FlushReportsAsync(cancellationToken); }
        catch (Exception e) { logger.LogWarning(e, "Tenant {Tenant}: saving reported retained bytes on deactivation failed; grants stay counted", Tenant); }
    }

    public Task<TenantView> Get() => Task.FromResult(View());

    public async Task<RunPage> GetRunPage(int offset, int limit)
    {
        if (offset < 0) throw new ArgumentOutOfRangeException(nameof(offset), offset, $"A page starts at offset 0 or later, not {offset}.");
        if (limit is < 1 or > RunPage.MaxLimit) throw new ArgumentOutOfRangeException(nameof(limit), limit, $"A page holds 1 to {RunPage.MaxLimit} runs, not {limit}.");
        var runs = S.RetainedBytesByRun.Keys.Order(StringComparer.Ordinal).Skip(offset).Take(limit).ToList();
        var summaries = await Task.WhenAll(runs.Select(SummaryOf));
        return new RunPage(Tenant, Limits, S.RetainedBytesByRun.Count, S.RetainedBytesByRun.Values.Sum(), offset, summaries);
    }

    /// <summary>The run's own summary; a run that cannot answer (its silo failing over) is listed with what the tenant knows.</summary>
    private async Task<RunSummary> SummaryOf(string run)
    {
        try { return await GrainFactory.GetGrain<IRunReads>(new RunId(Tenant, run).Key).GetSummary(); }
        catch (Exception e) when (e is not TenantAccessDeniedException)
        {
            logger.LogDebug(e, "Tenant {Tenant}: run {Run} did not answer for its summary", Tenant, run);
            return new RunSummary(run, RunHealth.Waiting, null, null, S.RetainedBytesByRun.GetValueOrDefault(run), 0, null, null);
        }
    }

    public async Task<TenantView> SetLimits(TenantLimits limits)
    {
        if (limits.MaxRuns is < 0 || limits.MaxRetainedBytes is < 0) throw new RunRefusedException("Tenant limits must not be negative.");
        S.Limits = limits;
        S.LimitsSet = true;
        await _writer.WriteAsync();
        logger.LogInformation("Tenant {Tenant} limits set to {Limits}", Tenant, limits);
        await RevokeGrantsAsync();
        return View();
    }

    /// <summary>Runs drop their grants and ask again under the new limits; then only what they retain counts.</summary>
    private Task RevokeGrantsAsync() => RevokeGrantsAsync(S.RetainedBytesByRun.Keys.ToList());

    /// <remarks>
    /// Each run gives its grant back with the report it sends before it answers (<see cref="Report"/> with release), so a
    /// grant a run asked for again meanwhile (Reserve interleaves) is never taken away here.
    /// </remarks>
    private async Task RevokeGrantsAsync(IReadOnlyList<string> runs)
    {
        if (runs.Count == 0) return;
        foreach (var batch in runs.Chunk(64))
            await Task.WhenAll(batch.Select(run => GrainFactory.GetGrain<IRunAccounting>(new RunId(Tenant, run).Key).RevokeGrant()));
        await _writer.WriteAsync();
    }

    public async Task RegisterRun(string run)
    {
        CheckpointName.Validate(run, "run name");
        if (S.RetainedBytesByRun.ContainsKey(run)) return;
        if (Limits.MaxRuns is { } max && S.RetainedBytesByRun.Count >= max)
            throw new TenantLimitException($"Tenant {Tenant} already has {S.RetainedBytesByRun.Count} runs, its limit is {max}.");
        S.RetainedBytesByRun[run] = 0;
        await _writer.WriteAsync();
        await EnsureListedAsync();
    }

    /// <summary>Adds the tenant to the operator's directory once (tenants from before the directory are added by their next run).</summary>
    private async Task EnsureListedAsync()
    {
        if (S.Listed) return;
        await GrainFactory.GetGrain<ITenantDirectory>(ITenantDirectory.Key).Add(Tenant);
        S.Listed = true;
        await _writer.WriteAsync();
    }

    public async Task UnregisterRun(string run)
    {
        CheckpointName.Validate(run, "run name");
        var removed = S.RetainedBytesByRun.Remove(run) | S.GrantedBytesByRun.Remove(run);
        if (removed) await _writer.WriteAsync();
    }

    public async Task<RetainedBytesGrant> Reserve(string run, long retainedBytes)
    {
        CheckAccounted(run, retainedBytes);
        var lease = options.Value.GrantLease;
        if (Limits.MaxRetainedBytes is not { } max) return new RetainedBytesGrant(null, lease);
        if (Others(run) + retainedBytes > max)
        {
            // Grants hold slack that their runs may not use: before refusing, take it back (each such run reports what it
            // retains as it answers), or runs that asked first would keep the room from this one for good.
            var slack = S.GrantedBytesByRun.Where(g => g.Key != run && g.Value > S.RetainedBytesByRun.GetValueOrDefault(g.Key)).Select(g => g.Key).ToList();
            await RevokeGrantsAsync(slack);
        }
        var others = Others(run);
        if (others + retainedBytes > max)
            throw new TenantLimitException($"Tenant {Tenant} would retain {others + retainedBytes:N0} bytes with this checkpoint of run {run}; its limit is {max:N0}. Delete checkpoints or runs, lower max_to_keep, or raise the limit.");
        // Slack (up to the same again) lets a growing run commit a few more times before it asks again.
        var granted = retainedBytes + Math.Min(retainedBytes, max - others - retainedBytes);
        S.GrantedBytesByRun[run] = granted;
        await _writer.WriteAsync();
        return new RetainedBytesGrant(granted, lease);
    }

    private long Others(string run) => S.RetainedBytesByRun.Keys.Where(r => r != run).Sum(Accounted);

    public Task Report(string run, long retainedBytes, bool releaseGrant)
    {
        CheckAccounted(run, retainedBytes);
        S.RetainedBytesByRun[run] = retainedBytes;
        if (releaseGrant) S.GrantedBytesByRun.Remove(run);
        metrics.ReportRetained(Tenant, S.RetainedBytesByRun.Values.Sum());
        _dirty = true;
        return Task.CompletedTask;
    }

    private async Task FlushReportsAsync(CancellationToken cancellationToken)
    {
        if (!_dirty) return;
        _dirty = false;
        try
        {
            await _writer.WriteAsync();
        }
        catch
        {
            _dirty = true;
            throw;
        }
    }

    private long Accounted(string run) => Math.Max(S.RetainedBytesByRun.GetValueOrDefault(run), S.GrantedBytesByRun.GetValueOrDefault(run));

    public Task<IReadOnlyList<string>> ListRuns() => Task.FromResult<IReadOnlyList<string>>(S.RetainedBytesByRun.Keys.Order(StringComparer.Ordinal).ToList());

    /// <summary>Bytes are only ever reported for a registered run and are never negative (a negative report would hide other runs' bytes).</summary>
    private void CheckAccounted(string run, long runRetainedBytes)
    {
        CheckpointName.Validate(run, "run name");
        if (runRetainedBytes < 0) throw new RunRefusedException($"Run {Tenant}/{run} reported {runRetainedBytes} retained bytes; retained bytes are never negative.");
        if (!S.RetainedBytesByRun.ContainsKey(run)) throw new RunRefusedException($"Run {Tenant}/{run} is not registered with its tenant.");
    }

    private TenantView View() => new(Tenant, Limits, new Dictionary<string, long>(S.RetainedBytesByRun));
}
