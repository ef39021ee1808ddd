using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Checkpointing.Abstractions.Runs;

/// <summary>
/// Tenant credentials: "v1.{tenant}.{expiry unix seconds}.{base64url HMAC-SHA256}" signed with the
/// operator's key. A token grants access to one tenant's runs until it expires; the tenant name
/// "*" is the operator's and grants every tenant. The silo checks the token on every call.
/// </summary>
public static class TenantTokens
{
    public const string RequestContextKey = "ckpt-tenant-token";
    public const string OperatorTenant = "*";

    public static string Issue(byte[] key, string tenant, DateTimeOffset expires)
    {
        if (tenant != OperatorTenant) CheckpointName.Validate(tenant, "tenant name");
        var payload = $"v1.{tenant}.{expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}";
        return $"{payload}.{Signature(key, payload)}";
    }

    /// <summary>The tenant the token grants, or a reason it grants nothing.</summary>
    public static (string? Tenant, string? Problem) Validate(byte[] key, string? token, DateTimeOffset now)
    {
        if (string.IsNullOrEmpty(token)) return (null, "no tenant credential was sent");
        var parts = token.Split('.');
        if (parts.Length != 4 || parts[0] != "v1") return (null, "the tenant credential is malformed");
        var payload = $"{parts[0]}.{parts[1]}.{parts[2]}";
        var expected = Encoding.ASCII.GetBytes(Signature(key, payload));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.ASCII.GetBytes(parts[3]))) return (null, "the tenant credential's signature is invalid");
        if (!long.TryParse(parts[2], NumberStyles.None, CultureInfo.InvariantCulture, out var expiry)) return (null, "the tenant credential is malformed");
        if (DateTimeOffset.FromUnixTimeSeconds(expiry) <= now) return (null, "the tenant credential has expired");
        return (parts[1], null);
    }

    public static bool Grants(string grantedTenant, string targetTenant) =>
        grantedTenant == OperatorTenant || grantedTenant == targetTenant;

    private static string Signature(byte[] key, string payload) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(payload))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
