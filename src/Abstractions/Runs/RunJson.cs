using System.Globalization;
using System.Text.Json.Nodes;

namespace Checkpointing.Abstractions.Runs;

/// <summary>The JSON shapes of runs and tenants, the same for <c>ckpt … --json</c> and the silo's HTTP API.</summary>
public static class RunJson
{
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
    };

    public static JsonObject Of(PeriodicPolicy policy) => new()
    {
        ["period"] = policy.Period,
        ["max_iter"] = policy.MaxIter,
        ["max_to_keep"] = policy.MaxToKeep,
        ["file_prefix"] = policy.FilePrefix,
    };

    public static JsonObject Of(TenantView view) => new()
    {
        ["tenant"] = view.Tenant,
        ["max_runs"] = view.Limits.MaxRuns,
        ["max_retained_bytes"] = view.Limits.MaxRetainedBytes,
        ["runs"] = new JsonArray(view.RetainedBytesByRun.OrderBy(r => r.Key, StringComparer.Ordinal)
            .Select(r => (JsonNode?)new JsonObject { ["run"] = r.Key, ["retained_bytes"] = r.Value }).ToArray()),
    };
}
