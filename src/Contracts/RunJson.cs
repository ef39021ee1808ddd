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
            ["committed_utc"] = c.CommittedUtc.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
            ["last"] = c.Name == view.LastCheckpoint,
        }).ToArray()),
        ["pending"] = new JsonArray(view.Pending.Select(p => (JsonNode?)new JsonObject
        {
            ["name"] = p.Name,
            ["epoch"] = p.Epoch,
            ["world_size"] = p.WorldSize,
            ["ranks_reported"] = p.RanksReported,
        }).ToArray()),
        ["checkpoint_request"] = view.CheckpointRequest?.Reason,
        ["hosted_by"] = view.HostedBy,
    };

    /// <summary>A periodic policy in fvcore's names: period, max_iter (null: no final checkpoint), max_to_keep (null: keep all), file_prefix.</summary>
    public static JsonObject Of(PeriodicPolicy policy) => new()
    {
        ["period"] = policy.Period,
        ["max_iter"] = policy.MaxIter,
        ["max_to_keep"] = policy.MaxToKeep,
        ["file_prefix"] = policy.FilePrefix,
    };

    /// <summary>
    /// What <c>ckpt run ls TENANT --json</c> and GET …/tenants/{tenant}/runs print: the tenant's limits (null = unlimited) and
    /// its runs in ordinal order with the retained bytes each last reported.
    /// </summary>
    public static JsonObject Of(TenantView view) => new()
    {
        ["tenant"] = view.Tenant,
        ["max_runs"] = view.Limits.MaxRuns,
        ["max_retained_bytes"] = view.Limits.MaxRetainedBytes,
        ["runs"] = new JsonArray(view.RetainedBytesByRun.OrderBy(r => r.Key, StringComparer.Ordinal)
            .Select(r => (JsonNode?)new JsonObject { ["run"] = r.Key, ["retained_bytes"] = r.Value }).ToArray()),
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
            ["at_utc"] = h.AtUtc.UtcDateTime.ToString("O", CultureInfo.InvariantCulture),
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
        }).ToArray()),
    };
}
