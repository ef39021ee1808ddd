using System.Text.Json;
using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Checkpointing.Silo;

/// <summary>
/// Liveness (<c>/healthz</c>) and readiness (<c>/readyz</c>) on the health-check framework. Liveness
/// runs only the lifecycle check; readiness runs the lifecycle, storage and membership checks. The
/// answers are small JSON objects a probe or a person can read; a failing one is 503 and names its reason.
/// </summary>
public static class HealthEndpoints
{
    private const string Live = "live";
    private const string Ready = "ready";

    /// <summary>The checks, in the order readiness reports the first that fails.</summary>
    private static readonly string[] ReadinessOrder = ["lifecycle", "storage", "membership"];

    /// <summary>Registers the checks behind both endpoints.</summary>
    public static void AddSiloHealthChecks(this IServiceCollection services, StorageSettings storage, Checkpointing.Storage.StorageAccount account) =>
        services.AddHealthChecks()
            .AddTypeActivatedCheck<LifecycleHealthCheck>("liveness", failureStatus: null, tags: [Live], args: false)
            .AddTypeActivatedCheck<LifecycleHealthCheck>("lifecycle", failureStatus: null, tags: [Ready], args: true)
            .AddCheck("storage", new StorageHealthCheck(storage, account), tags: [Ready])
            .AddCheck<MembershipHealthCheck>("membership", tags: [Ready]);

    /// <summary>Maps <c>/healthz</c> and <c>/readyz</c>.</summary>
    public static void MapSiloHealthChecks(this WebApplication app, SiloSettings silo)
    {
        app.MapHealthChecks("/healthz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(Live),
            ResponseWriter = (context, report) => WriteAsync(context, report.Status == HealthStatus.Healthy
                ? new { status = "ok", mode = silo.Mode, cluster = silo.ClusterId, siloPort = silo.SiloPort, gatewayPort = silo.GatewayPort }
                : new { status = "stopping" }),
        }).ExcludeFromDescription();
        app.MapHealthChecks("/readyz", new HealthCheckOptions
        {
            Predicate = check => check.Tags.Contains(Ready),
            ResponseWriter = (context, report) => WriteAsync(context, report.Status == HealthStatus.Healthy
                ? new { status = "ready" }
                : new { status = "not ready", reason = FirstFailure(report) }),
        }).ExcludeFromDescription();
    }

    private static string FirstFailure(HealthReport report) => ReadinessOrder
        .Select(name => report.Entries.TryGetValue(name, out var entry) && entry.Status != HealthStatus.Healthy ? entry.Description ?? name : null)
        .First(reason => reason is not null)!;

    private static Task WriteAsync(HttpContext context, object body)
    {
        context.Response.ContentType = "application/json; charset=utf-8";
        return context.Response.WriteAsync(JsonSerializer.Serialize(body));
    }
}
