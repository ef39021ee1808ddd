using Checkpointing.Contracts;

namespace Checkpointing.Silo;

/// <summary>
/// Lets only the operator (a token for tenant "*") into an endpoint group, e.g. the Orleans Dashboard at
/// /orleans: by <c>Authorization: Bearer</c>, or by a cookie set when the page is opened once as
/// <c>/orleans/?token=…</c> (the dashboard's own scripts send no header). 401 without a valid token, 403
/// for a tenant's.
/// </summary>
public static class OperatorGate
{
    private const string Cookie = "ckpt-operator";

    public static RouteGroupBuilder RequireOperator(this RouteGroupBuilder group) => group.AddEndpointFilter(async (context, next) =>
    {
        var http = context.HttpContext;
        var fromQuery = http.Request.Query["token"].ToString();
        var token = fromQuery.Length > 0 ? fromQuery : BearerTokens.FromHeader(http.Request) ?? http.Request.Cookies[Cookie];
        var (tenant, problem) = BearerTokens.Validate(http, token);
        if (tenant is null) return Results.Problem($"The operator's token is required: {problem}.", statusCode: 401, title: "Unauthorized");
        if (tenant != TenantTokens.OperatorTenant) return Results.Problem($"Only the operator may open this; the token is for tenant '{tenant}'.", statusCode: 403, title: "Forbidden");
        if (fromQuery.Length > 0)
        {
            // Keep the token out of the address bar and the history: remember it in a cookie for this path only.
            http.Response.Cookies.Append(Cookie, fromQuery, new CookieOptions { HttpOnly = true, SameSite = SameSiteMode.Strict, Path = http.Request.PathBase + "/orleans" });
            return Results.Redirect(http.Request.Path);
        }
        return await next(context);
    });
}
