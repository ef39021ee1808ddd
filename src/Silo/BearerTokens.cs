using Checkpointing.Contracts;
using Checkpointing.Grains;
using Microsoft.Extensions.Options;

namespace Checkpointing.Silo;

/// <summary>Tenant tokens on HTTP requests, judged by the same rules (key, clock) as the grain call filter.</summary>
internal static class BearerTokens
{
    /// <summary>The token of an <c>Authorization: Bearer</c> header, or null without one.</summary>
    public static string? FromHeader(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..].Trim() : null;
    }

    /// <summary>The tenant <paramref name="token"/> grants now ("*" for the operator), or why it grants nothing.</summary>
    public static (string? Tenant, string? Problem) Validate(HttpContext http, string? token) => TenantTokens.Validate(
        http.RequestServices.GetRequiredService<IOptions<TenancyOptions>>().Value.KeyBytes(), token,
        http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow());
}
