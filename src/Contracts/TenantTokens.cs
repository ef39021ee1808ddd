using System.Globalization;
using System.Security.Cryptography;
using System.Text;

namespace Checkpointing.Contracts;

/// <summary>
/// Tenant credentials: "v1.{tenant}.{expiry unix seconds}.{base64url HMAC-SHA256}" signed with the
/// operator's key. A token grants access to one tenant's runs until it expires; the tenant name
/// "*" is the operator's and grants every tenant. The silo checks the token on every call.
/// </summary>
/// <remarks>
/// Tenant names may contain '.', the expiry and the signature never do: a token is read from the
/// right (signature, then expiry), and everything between "v1." and the expiry is the tenant.
/// </remarks>
public static class TenantTokens
{
    /// <summary>The Orleans <c>RequestContext</c> key a client puts its token under; the silo's call filter reads it on every call.</summary>
    public const string RequestContextKey = "ckpt-tenant-token";
    /// <summary>The operator's tenant name: its tokens grant every tenant and the operator-only members.</summary>
    public const string OperatorTenant = "*";

    private static readonly long MaxUnixSeconds = DateTimeOffset.MaxValue.ToUnixTimeSeconds();

    /// <summary>A token granting <paramref name="tenant"/> until <paramref name="expires"/>, signed with <paramref name="key"/>.</summary>
    /// <param name="key">The operator's signing key, the silo's <c>Tenancy:SigningKey</c> (which the silo requires to be at least 32 bytes; not checked here).</param>
    /// <param name="tenant">The tenant, or <see cref="OperatorTenant"/> for an operator token.</param>
    /// <param name="expires">When the token stops granting access; kept to whole seconds (sub-seconds are dropped).</param>
    /// <exception cref="ArgumentException"><paramref name="tenant"/> is not a valid tenant name.</exception>
    public static string Issue(byte[] key, string tenant, DateTimeOffset expires)
    {
        if (tenant != OperatorTenant) CheckpointName.Validate(tenant, "tenant name");
        var payload = $"v1.{tenant}.{expires.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)}";
        return $"{payload}.{Signature(key, payload)}";
    }

    /// <summary>The tenant the token grants, or a reason it grants nothing.</summary>
    public static (string? Tenant, string? Problem) Validate(byte[] key, string? token, DateTimeOffset now)
    {
        var (tenant, expires, problem) = Verify(key, token);
        if (tenant is null) return (null, problem);
        return expires <= now ? (null, Expired) : (tenant, null);
    }

    /// <summary>The problem <see cref="Validate"/> gives for a token whose signature verifies but whose expiry has passed.</summary>
    public const string Expired = "the tenant credential has expired";

    /// <summary>The tenant and expiry of a well-formed token whose signature verifies (expiry not yet checked against a clock), or a reason it grants nothing.</summary>
    public static (string? Tenant, DateTimeOffset Expires, string? Problem) Verify(byte[] key, string? token)
    {
        if (string.IsNullOrEmpty(token)) return (null, default, "no tenant credential was sent");
        const string malformed = "the tenant credential is malformed";
        var signatureDot = token.LastIndexOf('.');
        var expiryDot = signatureDot > 0 ? token.LastIndexOf('.', signatureDot - 1) : -1;
        if (!token.StartsWith("v1.", StringComparison.Ordinal) || expiryDot <= 3) return (null, default, malformed);
        var payload = token[..signatureDot];
        var expected = Encoding.ASCII.GetBytes(Signature(key, payload));
        if (!CryptographicOperations.FixedTimeEquals(expected, Encoding.UTF8.GetBytes(token[(signatureDot + 1)..]))) return (null, default, "the tenant credential's signature is invalid");
        var tenant = token[3..expiryDot];
        if (tenant != OperatorTenant && !CheckpointName.IsValid(tenant)) return (null, default, malformed);
        if (!long.TryParse(token[(expiryDot + 1)..signatureDot], NumberStyles.None, CultureInfo.InvariantCulture, out var expiry)) return (null, default, malformed);
        if (expiry > MaxUnixSeconds) return (null, default, malformed);
        return (tenant, DateTimeOffset.FromUnixTimeSeconds(expiry), null);
    }

    /// <summary>
    /// The tenant a well-formed token names, without verifying its signature (only the operator's key can): for a party that
    /// holds its own token and compares others to it, such as a memory-tier holder. Null for a malformed token.
    /// </summary>
    public static string? ClaimedTenant(string token)
    {
        var signatureDot = token.LastIndexOf('.');
        var expiryDot = signatureDot > 0 ? token.LastIndexOf('.', signatureDot - 1) : -1;
        if (!token.StartsWith("v1.", StringComparison.Ordinal) || expiryDot <= 3) return null;
        var tenant = token[3..expiryDot];
        return tenant == OperatorTenant || CheckpointName.IsValid(tenant) ? tenant : null;
    }

    /// <summary>Whether a token for <paramref name="grantedTenant"/> opens <paramref name="targetTenant"/>: the same tenant, or the operator's token.</summary>
    public static bool Grants(string grantedTenant, string targetTenant) =>
        grantedTenant == OperatorTenant || grantedTenant == targetTenant;

    private static string Signature(byte[] key, string payload) =>
        Convert.ToBase64String(HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(payload))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
