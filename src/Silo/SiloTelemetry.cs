using Checkpointing.Abstractions;
using Checkpointing.Grains;
using OpenTelemetry;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Checkpointing.Silo;

/// <summary>
/// The silo's OpenTelemetry: the resource names the service <see cref="ServiceName"/>; metrics (the silo's own, Orleans',
/// the .NET runtime's, ASP.NET Core's and Kestrel's) are served in Prometheus format on <c>/metrics</c>; traces (the run
/// grain's commit spans and Orleans' grain-call spans) and metrics go over OTLP when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c>
/// is set, the standard way to name a collector.
/// </summary>
public static class SiloTelemetry
{
    public const string ServiceName = "checkpointing-silo";

    /// <summary>The meters exported besides the silo's own: Orleans, the runtime (built into .NET), ASP.NET Core hosting and Kestrel.</summary>
    public static readonly string[] PlatformMeters = ["Microsoft.Orleans", "System.Runtime", "Microsoft.AspNetCore.Hosting", "Microsoft.AspNetCore.Server.Kestrel"];

    /// <summary>Orleans' activity sources for grain calls, whose spans carry the trace from an agent into the grain.</summary>
    public static readonly string[] OrleansSources = ["Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>The buckets of <c>ckpt_commit_duration</c>, in seconds.</summary>
    public static readonly double[] CommitSecondsBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

    public static void AddSiloTelemetry(this IServiceCollection services, IConfiguration configuration)
    {
        var otlp = !string.IsNullOrWhiteSpace(configuration["OTEL_EXPORTER_OTLP_ENDPOINT"]);
        var telemetry = services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(ServiceName))
            .WithMetrics(metrics =>
            {
                metrics.AddMeter(SiloMetrics.MeterName).AddMeter(PlatformMeters).AddPrometheusExporter();
                // Commits take milliseconds to seconds: OpenTelemetry's default buckets (first bound 5) would hide every p99 below 5 s.
                metrics.AddView("ckpt_commit_duration", new ExplicitBucketHistogramConfiguration { Boundaries = CommitSecondsBuckets });
                if (otlp) metrics.AddOtlpExporter();
            });
        if (otlp) telemetry.WithTracing(tracing => tracing.AddSource(CheckpointTracing.SourceName).AddSource(OrleansSources).AddOtlpExporter());
    }
}
