using System.Globalization;
using System.Reflection;
using System.Security.Cryptography;
using System.Text;
using Checkpointing.Contracts;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

/// <summary>
/// Proves a call to an internal member (<see cref="CallerAccess.Internal"/>) comes from a grain of
/// this cluster: "{issued unix seconds}.{HMAC}" over the target grain, the member and the issue time,
/// keyed by a key derived from the operator's signing key, which silos hold and clients never do.
/// A proof is good for that one member of that one grain, and for <see cref="Validity"/> only, so a
/// leaked one (request-context logging) soon opens nothing.
/// </summary>
public sealed class InternalCallProof(IOptions<TenancyOptions> options, TimeProvider time)
{
    /// <summary>The <see cref="RequestContext"/> key a proof travels under.</summary>
    public const string RequestContextKey = "ckpt-internal-call";

    /// <summary>How long after it is issued a proof is accepted (a call, retries included, is over by then).</summary>
    public static readonly TimeSpan Validity = TimeSpan.FromMinutes(5);

    /// <summary>How far the issuing silo's clock may run ahead of the verifying silo's.</summary>
    public static readonly TimeSpan ClockSkew = TimeSpan.FromMinutes(1);

    private readonly byte[] _key = HMACSHA256.HashData(options.Value.KeyBytes(), "ckpt internal grain calls v2"u8);

    /// <summary>A proof, issued now, for a call to <paramref name="interfaceMethod"/> on <paramref name="target"/>.</summary>
    public string For(GrainId target, MethodInfo interfaceMethod)
    {
        var issued = time.GetUtcNow().ToUnixTimeSeconds();
        return $"{issued.ToString(CultureInfo.InvariantCulture)}.{Mac(issued, target, interfaceMethod)}";
    }

    /// <summary>
    /// Whether <paramref name="presented"/> is a proof for a call to <paramref name="interfaceMethod"/> on <paramref name="target"/>
    /// issued within <see cref="Validity"/> (and no more than <see cref="ClockSkew"/> in the future). False for null or a
    /// malformed proof; never throws. The MACs are compared in constant time.
    /// </summary>
    public bool Verify(string? presented, GrainId target, MethodInfo interfaceMethod)
    {
        var dot = presented?.IndexOf('.') ?? -1;
        if (presented is null || dot <= 0 || !long.TryParse(presented.AsSpan(0, dot), NumberStyles.None, CultureInfo.InvariantCulture, out var issued)) return false;
        var age = time.GetUtcNow().ToUnixTimeSeconds() - issued;
        if (age > Validity.TotalSeconds || age < -ClockSkew.TotalSeconds) return false;
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Mac(issued, target, interfaceMethod)), Encoding.ASCII.GetBytes(presented[(dot + 1)..]));
    }

    private string Mac(long issued, GrainId target, MethodInfo interfaceMethod) =>
        Convert.ToBase64String(HMACSHA256.HashData(_key, Encoding.UTF8.GetBytes(
            $"{target}\n{interfaceMethod.DeclaringType!.FullName}.{interfaceMethod.Name}\n{issued.ToString(CultureInfo.InvariantCulture)}")));
}
