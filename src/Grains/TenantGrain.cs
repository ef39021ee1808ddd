using Orleans.Runtime;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Grains;

[GenerateSerializer]
public sealed class TenantState
{
    [Id(0)] public TenantLimits Limits { get; set; } = new(null, null);
    [Id(1)] public Dictionary<string, long> RetainedBytesByRun { get; set; } = [];
}

/// <summary>
/// A tenant's runs and limits. A commit that would take the tenant past its retained-bytes limit
/// is refused (not evicted): silently deleting another run's checkpoints would be worse than a
/// clear error the job can act on. Accounting members are reachable from run grains only (the
/// call filter refuses clients) and still check their arguments.
/// </summary>
public sealed class TenantGrain(
    [PersistentState("tenant", GrainStorage.Tenants)] IPersistentState<TenantState> state,
    ILogger<TenantGrain> logger) : Grain, ITenantGrain, ITenantAccounting
{
    private TenantState S => state.State;
    private string Tenant => this.GetPrimaryKeyString();

    public Task<TenantView> Get() => Task.FromResult(View());

    public async Task<TenantView> SetLimits(TenantLimits limits)
    {
        if (limits.MaxRuns is < 0 || limits.MaxRetainedBytes is < 0) throw new RunRefusedException("Tenant limits must not be negative.");
        S.Limits = limits;
        await state.WriteStateAsync();
        logger.LogInformation("Tenant {Tenant} limits set to {Limits}", Tenant, limits);
        return View();
    }

    public async Task RegisterRun(string run)
    {
        CheckpointName.Validate(run, "run name");
        if (S.RetainedBytesByRun.ContainsKey(run)) return;
        if (S.Limits.MaxRuns is { } max && S.RetainedBytesByRun.Count >= max)
            throw new TenantLimitException($"Tenant {Tenant} already has {S.RetainedBytesByRun.Count} runs, its limit is {max}.");
        S.RetainedBytesByRun[run] = 0;
        await state.WriteStateAsync();
    }

    public async Task UnregisterRun(string run)
    {
        CheckpointName.Validate(run, "run name");
        if (S.RetainedBytesByRun.Remove(run)) await state.WriteStateAsync();
    }

    public Task CheckRetainedBytes(string run, long runRetainedBytes)
    {
        CheckAccounted(run, runRetainedBytes);
        if (S.Limits.MaxRetainedBytes is { } max)
        {
            var total = S.RetainedBytesByRun.Where(kv => kv.Key != run).Sum(kv => kv.Value) + runRetainedBytes;
            if (total > max)
                throw new TenantLimitException($"Tenant {Tenant} would retain {total:N0} bytes with this checkpoint of run {run}; its limit is {max:N0}. Delete checkpoints or runs, lower max_to_keep, or raise the limit.");
        }
        return Task.CompletedTask;
    }

    public async Task ReportRetainedBytes(string run, long runRetainedBytes)
    {
        CheckAccounted(run, runRetainedBytes);
        if (S.RetainedBytesByRun.TryGetValue(run, out var current) && current == runRetainedBytes) return;
        S.RetainedBytesByRun[run] = runRetainedBytes;
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> ListRuns() => Task.FromResult<IReadOnlyList<string>>(S.RetainedBytesByRun.Keys.Order(StringComparer.Ordinal).ToList());

    /// <summary>Bytes are only ever reported for a registered run and are never negative (a negative report would hide other runs' bytes).</summary>
    private void CheckAccounted(string run, long runRetainedBytes)
    {
        CheckpointName.Validate(run, "run name");
        if (runRetainedBytes < 0) throw new RunRefusedException($"Run {Tenant}/{run} reported {runRetainedBytes} retained bytes; retained bytes are never negative.");
        if (!S.RetainedBytesByRun.ContainsKey(run)) throw new RunRefusedException($"Run {Tenant}/{run} is not registered with its tenant.");
    }

    private TenantView View() => new(Tenant, S.Limits, new Dictionary<string, long>(S.RetainedBytesByRun));
}
