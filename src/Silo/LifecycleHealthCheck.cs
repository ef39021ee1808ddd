using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Checkpointing.Silo;

/// <summary>
/// Where the silo is in its life: a stopping silo is neither live nor ready (it is draining), and one
/// that has not finished starting is live but not ready.
/// </summary>
/// <param name="requireStarted">Report a silo that has not finished starting as unhealthy (readiness), or not (liveness).</param>
public sealed class LifecycleHealthCheck(IHostApplicationLifetime lifetime, bool requireStarted) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) => Task.FromResult(
        lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("stopping")
        : requireStarted && !lifetime.ApplicationStarted.IsCancellationRequested ? HealthCheckResult.Unhealthy("starting")
        : HealthCheckResult.Healthy());
}
