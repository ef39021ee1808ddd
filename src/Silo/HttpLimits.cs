using System.Threading.RateLimiting;
using Microsoft.AspNetCore.RateLimiting;

namespace Checkpointing.Silo;

/// <summary>
/// What one HTTP client may take of a silo (section "Http"): connections, header and body sizes, how long a connection may
/// sit without sending a request, and each tenant's request rate on the API. One client or tenant must never take the silo
/// (and every other tenant with it) down: idle connections are closed after <see cref="RequestHeadersTimeout"/> or
/// <see cref="KeepAliveTimeout"/>, past <see cref="MaxConcurrentConnections"/> new ones are refused, and a tenant past its
/// rate gets 429 with Retry-After.
/// </summary>
public sealed class HttpLimits
{
    public const string Section = "Http";
    public const string TenantPolicy = "tenant";

    public int MaxConcurrentConnections { get; set; } = 1000;
    public long MaxRequestBodyBytes { get; set; } = 64 << 10;
    public int MaxRequestHeadersTotalBytes { get; set; } = 32 << 10;
    public TimeSpan RequestHeadersTimeout { get; set; } = TimeSpan.FromSeconds(10);
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>API requests a tenant may make per second, sustained.</summary>
    public int TenantRequestsPerSecond { get; set; } = 50;

    /// <summary>API requests a tenant may make at once after being quiet.</summary>
    public int TenantBurst { get; set; } = 100;

    public void ApplyTo(Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerLimits limits)
    {
        limits.MaxConcurrentConnections = MaxConcurrentConnections;
        limits.MaxConcurrentUpgradedConnections = MaxConcurrentConnections;
        limits.MaxRequestBodySize = MaxRequestBodyBytes;
        limits.MaxRequestHeadersTotalSize = MaxRequestHeadersTotalBytes;
        limits.RequestHeadersTimeout = RequestHeadersTimeout;
        limits.KeepAliveTimeout = KeepAliveTimeout;
    }

    /// <summary>A token bucket per tenant, keyed by the tenant the bearer token grants (an invalid or missing token shares one bucket).</summary>
    public void ApplyTo(RateLimiterOptions options)
    {
        options.RejectionStatusCode = StatusCodes.Status429TooManyRequests;
        options.AddPolicy(TenantPolicy, http => RateLimitPartition.GetTokenBucketLimiter(
            BearerTokens.Validate(http, BearerTokens.FromHeader(http.Request)).Tenant ?? "",
            _ => new TokenBucketRateLimiterOptions
            {
                TokenLimit = TenantBurst,
                TokensPerPeriod = TenantRequestsPerSecond,
                ReplenishmentPeriod = TimeSpan.FromSeconds(1),
                QueueLimit = 0,
                AutoReplenishment = true,
            }));
        options.OnRejected = (context, _) =>
        {
            context.HttpContext.Response.Headers.RetryAfter = "1";
            return ValueTask.CompletedTask;
        };
    }
}
