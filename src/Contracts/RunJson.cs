using System.Globalization;
using System.Text.Json.Nodes;

namespace Checkpointing.Contracts;

/// <summary>The JSON shapes of runs and tenants, the same for <c>ckpt … --json</c> and the silo's HTTP API.</summary>
public static class RunJson
{
    /// <summary>What <c>ckpt run recover</c> and POST …/recover print.</summary>
    public static JsonObject Of(RunId run, CatalogRecoveryReport report) => new()
    {
        ["run"] = run.Key,
        ["adopted"] = new JsonArray(report.Adopted.Select(name => (JsonNode?)name).ToArray()),
        ["refused"] = new JsonArray(report.Refused.Select(r => (JsonNode?)new JsonObject { ["name"] = r.Name, ["reason"] = r.Reason }).ToArray()),
        ["last_checkpoint"] = report.LastCheckpoint,
    };

    /// <summary>
    /// What <c>ckpt run show|create|policy --json</c>, <c>ckpt ls --run --json</c>, GET and POST …/runs/{tenant}/{run} and PUT …/policy print:
    /// the policy, epoch, last checkpoint, retained bytes, the catalog (committed_utc in ISO 8601, UTC) and the pending checkpoints.
    /// </summary>
    public static JsonObject Of(RunView view) => new()
    {
        ["run"] = view.Id.Key,
        ["policy"] = Of(view.Policy),
        ["epoch"] = view.Epoch,
        ["last"] = view.LastCheckpoint,
        ["retained_bytes"] = view.RetainedBytes,
        ["checkpoints"] = new JsonArray(view.Catalog.Select(c => (JsonNode?)new JsonObject
        {
            ["name"] = c.Name,
            ["iteration"] = c.Iteration,
            ["bytes"] = c.Bytes,
            ["world_size"] = c.WorldSize,
            ["committed_utc"] = Utc(c.CommittedUtc),
            ["last"] = c.Name == view.LastCheckpoint,
        }).ToArray()),
        ["pending"] = new JsonArray(view.Pending.Select(p => (JsonNode?)new JsonObject
        {
            ["name"] = p.Name,
            ["epoch"] = p.Epoch,
            ["world_size"] = p.WorldSize,
            ["ranks_reported"] = p.RanksReported,
            ["ranks_missing"] = Ints(p.MissingRanks ?? []),
            ["started_utc"] = Utc(p.StartedUtc),
        }).ToArray()),
        ["checkpoint_request"] = view.CheckpointRequest?.Reason,
        ["hosted_by"] = view.HostedBy,
        ["health"] = view.Health is { } health ? Of(health) : null,
        ["memory_checkpoint"] = view.MemoryCheckpoint is { } memory ? Of(memory) : null,
    };

    /// <summary>
    /// A run's health: state (<see cref="Name(RunHealth)"/>), a sentence on why, the missing ranks with the time each was last heard
    /// from, the world size, the newest heartbeat, the job's iteration, rank 0's loss, the median step seconds, and when the iteration last advanced.
    /// </summary>
    public static JsonObject Of(RunHealthView health) => new()
    {
        ["state"] = Name(health.State),
        ["detail"] = health.Detail,
        ["missing_ranks"] = new JsonArray(health.MissingRanks.Select(m => (JsonNode?)new JsonObject { ["rank"] = m.Rank, ["since_utc"] = Utc(m.SinceUtc) }).ToArray()),
        ["world_size"] = health.WorldSize,
        ["last_heartbeat_utc"] = Utc(health.LastHeartbeatUtc),
        ["iteration"] = health.Iteration,
        ["loss"] = health.Loss,
        ["step_seconds"] = health.StepSeconds is { } step ? Math.Round(step, 4) : null,
        ["progress_utc"] = Utc(health.ProgressUtc),
    };

    /// <summary>The name a health state has in JSON and metrics: snake case ("rank_missing").</summary>
    public static string Name(RunHealth state) => state switch
    {
        RunHealth.RankMissing => "rank_missing",
        _ => state.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// What <c>ckpt run ls TENANT --json</c> and GET …/tenants/{tenant}/runs print: the tenant's limits (null = unlimited), its
    /// totals, and a page of its runs in ordinal order, each with its health state, last checkpoint and when it committed,
    /// retained bytes, commits in the last hour, iteration and newest heartbeat.
    /// </summary>
    public static JsonObject Of(RunPage page) => new()
    {
        ["tenant"] = page.Tenant,
        ["max_runs"] = page.Limits.MaxRuns,
        ["max_retained_bytes"] = page.Limits.MaxRetainedBytes,
        ["retained_bytes"] = page.RetainedBytes,
        ["total_runs"] = page.TotalRuns,
        ["offset"] = page.Offset,
        ["runs"] = new JsonArray(page.Runs.Select(r => (JsonNode?)new JsonObject
        {
            ["run"] = r.Run,
            ["state"] = Name(r.Health),
            ["last"] = r.LastCheckpoint,
            ["last_committed_utc"] = Utc(r.LastCommittedUtc),
            ["retained_bytes"] = r.RetainedBytes,
            ["commits_last_hour"] = r.CommitsLastHour,
            ["iteration"] = r.Iteration,
            ["last_heartbeat_utc"] = Utc(r.LastHeartbeatUtc),
        }).ToArray()),
    };

    /// <summary>What GET …/runs/{tenant}/{run}/progress prints: the progress series from heartbeats, oldest first.</summary>
    public static JsonObject Of(RunId run, IReadOnlyList<ProgressPoint> progress) => new()
    {
        ["run"] = run.Key,
        ["progress"] = new JsonArray(progress.Select(p => (JsonNode?)new JsonObject
        {
            ["at_utc"] = Utc(p.AtUtc),
            ["iteration"] = p.Iteration,
            ["loss"] = p.Loss,
            ["step_seconds"] = p.StepSeconds is { } step ? Math.Round(step, 4) : null,
        }).ToArray()),
    };

    /// <summary>What GET /api/v1/tenants prints for the operator: each tenant with its run count, retained bytes and limits.</summary>
    public static JsonObject Of(IReadOnlyList<TenantView> tenants) => new()
    {
        ["tenants"] = new JsonArray(tenants.Select(t => (JsonNode?)new JsonObject
        {
            ["tenant"] = t.Tenant,
            ["runs"] = t.RetainedBytesByRun.Count,
            ["retained_bytes"] = t.RetainedBytes,
            ["max_runs"] = t.Limits.MaxRuns,
            ["max_retained_bytes"] = t.Limits.MaxRetainedBytes,
        }).ToArray()),
    };

    private static JsonArray Ints(IEnumerable<int> values) => new(values.Select(v => (JsonNode?)v).ToArray());

    private static string? Utc(DateTimeOffset? at) => at?.UtcDateTime.ToString("O", CultureInfo.InvariantCulture);

    /// <summary>A periodic policy in fvcore's names: period, max_iter (null: no final checkpoint), max_to_keep (null: keep all), file_prefix;
    /// and memory_period (null: no memory tier).</summary>
    public static JsonObject Of(PeriodicPolicy policy) => new()
    {
        ["period"] = policy.Period,
        ["max_iter"] = policy.MaxIter,
        ["max_to_keep"] = policy.MaxToKeep,
        ["file_prefix"] = policy.FilePrefix,
        ["memory_period"] = policy.MemoryPeriod,
    };

    /// <summary>
    /// What <c>ckpt history --json</c> and GET …/history print: each event oldest first, with seconds rounded to 0.1 ms and
    /// mb_per_s (10^6 bytes per second; null when the event took no measurable time).
    /// </summary>
    public static JsonObject Of(RunId run, IReadOnlyList<HistoryEntry> history) => new()
    {
        ["run"] = run.Key,
        ["history"] = new JsonArray(history.Select(h => (JsonNode?)new JsonObject
        {
            ["kind"] = h.Kind,
            ["name"] = h.Name,
            ["at_utc"] = Utc(h.AtUtc),
            ["epoch"] = h.Epoch,
            ["bytes"] = h.Bytes,
            ["seconds"] = Math.Round(h.Seconds, 4),
            ["mb_per_s"] = h.Seconds > 0 ? Math.Round(h.Bytes / h.Seconds / 1e6, 2) : null,
            ["rank_seconds"] = h.RankSeconds is not { } r ? null : new JsonObject
            {
                ["ranks"] = r.Ranks, ["min"] = Math.Round(r.Min, 4), ["median"] = Math.Round(r.Median, 4), ["max"] = Math.Round(r.Max, 4), ["slowest_rank"] = r.SlowestRank,
            },
            ["stall_seconds"] = h.StallSeconds is { } stall ? Math.Round(stall, 4) : null,
            ["rank"] = h.Rank,
            ["detail"] = h.Detail,
        }).ToArray()),
    };

    /// <summary>A run's newest memory-tier checkpoint: where each rank's snapshot is held.</summary>
    public static JsonObject Of(MemoryCheckpointRecord memory) => new()
    {
        ["name"] = memory.Name,
        ["iteration"] = memory.Iteration,
        ["epoch"] = memory.Epoch,
        ["world_size"] = memory.WorldSize,
        ["committed_utc"] = Utc(memory.CommittedUtc),
        ["held_bytes"] = memory.HeldBytes,
        ["usable"] = !memory.Unusable,
        ["ranks"] = new JsonArray(memory.Ranks.Select(r => (JsonNode?)new JsonObject
        {
            ["rank"] = r.Rank,
            ["bytes"] = r.Bytes,
            ["holders"] = new JsonArray(r.Holders.Select(h => (JsonNode?)new JsonObject { ["endpoint"] = h.Endpoint, ["host"] = h.Host }).ToArray()),
        }).ToArray()),
    };
}
