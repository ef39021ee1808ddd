using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Silo;

/// <summary>
/// The control plane over HTTP (<c>/api/v1</c>) for schedulers, preemption hooks and operators: the same
/// grain calls as <c>ckpt run …</c>, with the same JSON shapes (<see cref="RunJson"/>). Every request
/// carries <c>Authorization: Bearer &lt;tenant token&gt;</c>: none or an invalid one is 401, a token of
/// another tenant 403 (the grain call filter checks the same token again). Errors are problem+json.
/// </summary>
public static class RunApi
{
    /// <summary>The body of POST (create) and PUT …/policy: the policy in the JSON shape runs show it in.</summary>
    public sealed record PolicyBody(
        [property: JsonPropertyName("period")] int Period,
        [property: JsonPropertyName("max_iter")] long? MaxIter = null,
        [property: JsonPropertyName("max_to_keep")] int? MaxToKeep = null,
        [property: JsonPropertyName("file_prefix")] string? FilePrefix = null,
        [property: JsonPropertyName("memory_period")] int? MemoryPeriod = null)
    {
        public PeriodicPolicy ToPolicy() => new PeriodicPolicy(Period, MaxIter, MaxToKeep, FilePrefix ?? "model", MemoryPeriod).Validated();
    }

    public sealed record ReasonBody([property: JsonPropertyName("reason")] string? Reason = null);

    /// <summary>How many runs a tenant's page lists when the request does not say.</summary>
    public const int DefaultPage = 50;

    public static void Map(WebApplication app)
    {
        var api = app.MapGroup("/api/v1").RequireRateLimiting(HttpLimits.TenantPolicy);
        api.MapGet("/tenants", (HttpContext http, IGrainFactory grains) =>
            CallAsync(http, TenantTokens.OperatorTenant, async () =>
            {
                var names = await grains.GetGrain<ITenantDirectory>(ITenantDirectory.Key).List();
                return RunJson.Of(await Task.WhenAll(names.Select(name => grains.GetGrain<ITenantGrain>(name).Get())));
            }))
            .WithSummary("Operator: every tenant with its run count, retained bytes and limits.")
            .Documented("ListTenants", ApiDocumentTransformer.TenantsTag, 200, 401, 403);
        api.MapGet("/tenants/{tenant}/runs", (string tenant, int? offset, int? limit, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(await grains.GetGrain<ITenantGrain>(CheckpointName.Validate(tenant, "tenant name"))
                .GetRunPage(offset ?? 0, limit ?? DefaultPage))))
            .WithSummary($"A page of a tenant's runs (offset, limit: default {DefaultPage}, at most {RunPage.MaxLimit}) with health, last checkpoint, retained bytes and commits in the last hour, and the tenant's totals and limits (as `ckpt run ls TENANT --json`).")
            .Documented("ListTenantRuns", ApiDocumentTransformer.TenantsTag, 200, 400, 401, 403);
        api.MapGet("/runs/{tenant}/{run}", (string tenant, string run, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(await Run(grains, tenant, run).Get())))
            .WithSummary("A run: policy, catalog, last-checkpoint tag, pending checkpoints (as `ckpt run show --json`).")
            .Documented("GetRun", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
        api.MapPost("/runs/{tenant}/{run}", (string tenant, string run, PolicyBody policy, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(await Run(grains, tenant, run).Create(policy.ToPolicy())), createdAt: $"/api/v1/runs/{tenant}/{run}"))
            .WithSummary("Creates a run with a policy.")
            .Documented("CreateRun", ApiDocumentTransformer.RunsTag, 201, 400, 401, 403, 409);
        api.MapPut("/runs/{tenant}/{run}/policy", (string tenant, string run, PolicyBody policy, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(await Run(grains, tenant, run).SetPolicy(policy.ToPolicy()))))
            .WithSummary("Replaces a run's policy.")
            .Documented("SetRunPolicy", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
        api.MapDelete("/runs/{tenant}/{run}", (string tenant, string run, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () =>
            {
                await Run(grains, tenant, run).Delete();
                return new JsonObject { ["deleted"] = $"{tenant}/{run}" };
            }))
            .WithSummary("Deletes a run and every checkpoint of it.")
            .Documented("DeleteRun", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
        api.MapPost("/runs/{tenant}/{run}/checkpoint-now", (string tenant, string run, ReasonBody? body, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () =>
            {
                var reason = RequestBounds.Reason(body?.Reason) is { Length: > 0 } given ? given : "requested over HTTP";
                await Run(grains, tenant, run).RequestCheckpointNow(reason);
                return new JsonObject { ["run"] = $"{tenant}/{run}", ["requested"] = reason };
            }))
            .WithSummary("Asks the run's agents to checkpoint at their next step (e.g. on a preemption notice).")
            .Documented("RequestCheckpointNow", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
        api.MapPost("/runs/{tenant}/{run}/recover", (string tenant, string run, PolicyBody? policy, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(RunId.Parse($"{tenant}/{run}"),
                await Run(grains, tenant, run).RecoverCatalog(policy?.ToPolicy() ?? new PeriodicPolicy(20)))))
            .WithSummary("Operator: rebuilds the run's catalog and last tag from the committed checkpoints in the store, adopting only those that verify (as `ckpt run recover`); a run whose state is gone is created again with the policy given.")
            .Documented("RecoverRunCatalog", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 409);
        api.MapGet("/runs/{tenant}/{run}/progress", (string tenant, string run, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(RunId.Parse($"{tenant}/{run}"), await Run(grains, tenant, run).GetProgress())))
            .WithSummary("The run's recent progress from its ranks' heartbeats: iteration, rank 0's loss and step seconds, one point per second at most, oldest first.")
            .Documented("GetRunProgress", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
        api.MapGet("/runs/{tenant}/{run}/history", (string tenant, string run, HttpContext http, IGrainFactory grains) =>
            CallAsync(http, tenant, async () => RunJson.Of(RunId.Parse($"{tenant}/{run}"), await Run(grains, tenant, run).GetHistory())))
            .WithSummary("The run's checkpoint history: saves with their duration, bytes, throughput, per-rank times and stall, and loads (as `ckpt history --json`).")
            .Documented("GetRunHistory", ApiDocumentTransformer.RunsTag, 200, 400, 401, 403, 404);
    }

    private static ITrainingRunGrain Run(IGrainFactory grains, string tenant, string run) =>
        grains.GetGrain<ITrainingRunGrain>(RunId.Parse($"{tenant}/{run}").Key);

    /// <summary>Authorizes the bearer token for <paramref name="tenant"/>, makes the grain call under it, and maps failures to problem+json.</summary>
    /// <param name="createdAt">For a call that creates: the new resource's path, answered as 201 with Location.</param>
    private static async Task<IResult> CallAsync(HttpContext http, string tenant, Func<Task<JsonObject>> call, string? createdAt = null)
    {
        if (BearerTokens.FromHeader(http.Request) is not { } token)
            return Problem(401, "Unauthorized", "Send Authorization: Bearer <tenant token> (ckpt token --tenant T issues one).");
        var (granted, problem) = BearerTokens.Validate(http, token);
        if (granted is null) return Problem(401, "Unauthorized", $"The bearer token is not valid: {problem}.");
        if (!TenantTokens.Grants(granted, tenant)) return Problem(403, "Forbidden", $"The token is for tenant '{granted}', not '{tenant}'.");
        RequestContext.Set(TenantTokens.RequestContextKey, token);
        try
        {
            var body = await call();
            return createdAt is null ? Results.Json(body) : Results.Created(createdAt, body);
        }
        catch (Exception e) when (StatusOf(e) is { } status)
        {
            return Problem(status, e.GetType().Name.Replace("Exception", "", StringComparison.Ordinal), e.Message);
        }
        finally
        {
            RequestContext.Remove(TenantTokens.RequestContextKey);
        }
    }

    private static int? StatusOf(Exception e) => e switch
    {
        TenantAccessDeniedException => 403,
        RunNotFoundException => 404,
        RunRefusedException => 409, // tenant limits, a run that exists, a stale attempt
        ArgumentException => 400, // names and policies that fail validation
        _ => null,
    };

    private static IResult Problem(int status, string title, string detail) => Results.Problem(detail, statusCode: status, title: title);

    /// <summary>The route's operation id, tag, success status and the problem+json answers it may give.</summary>
    private static RouteHandlerBuilder Documented(this RouteHandlerBuilder route, string operationId, string tag, int success, params int[] problems)
    {
        route.WithName(operationId).WithTags(tag).Produces(success, typeof(JsonObject), "application/json");
        foreach (var status in problems) route.ProducesProblem(status);
        return route;
    }
}
