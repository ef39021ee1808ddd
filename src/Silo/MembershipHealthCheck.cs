using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Checkpointing.Silo;

/// <summary>
/// Part of readiness: this silo is an active member of its cluster, so grain calls routed to it are
/// served. A silo that joins, or that the cluster declared dead, is not ready.
/// </summary>
public sealed class MembershipHealthCheck(ILocalSiloDetails local, IClusterMembershipService membership) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy()
            : HealthCheckResult.Unhealthy($"membership: this silo is {status.ToString().ToLowerInvariant()} in cluster '{local.ClusterId}', not active"));
    }
}
