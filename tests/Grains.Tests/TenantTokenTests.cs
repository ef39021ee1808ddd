using System.Text;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using CsCheck;

namespace Checkpointing.Grains.Tests;

/// <summary>Tokens for every name <see cref="CheckpointName"/> allows: issued, they grant exactly that tenant; tampered, nothing.</summary>
public sealed class TenantTokenTests
{
    private const string Allowed = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.+=@";

    /// <summary>Any allowed tenant name: no leading '.', '.' anywhere else, up to the length limit.</summary>
    private static readonly Gen<string> TenantName =
        Gen.Select(Gen.Char[Allowed.Replace(".", "")], Gen.String[Gen.Char[Allowed], 0, CheckpointName.MaxLength - 1], (first, rest) => first + rest);

    private static readonly DateTimeOffset Now = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    [Fact]
    public void Dotted_tenant_names_get_tokens_the_silo_accepts()
    {
        foreach (var tenant in new[] { "a.b", "a.1800000000", "x.y.z", "v1", "a..b" })
        {
            var token = TenantTokens.Issue(TestTenancy.Key, tenant, Now.AddHours(1));
            Assert.Equal((tenant, null), TenantTokens.Validate(TestTenancy.Key, token, Now));
        }
    }

    [Fact]
    public void An_issued_token_grants_exactly_its_tenant()
    {
        Gen.Select(TenantName, Gen.Long[1, 10_000_000]).Sample((tenant, seconds) =>
        {
            Assert.True(CheckpointName.IsValid(tenant));
            var token = TenantTokens.Issue(TestTenancy.Key, tenant, Now.AddSeconds(seconds));
            Assert.Equal((tenant, null), TenantTokens.Validate(TestTenancy.Key, token, Now));
            Assert.Equal("the tenant credential has expired", TenantTokens.Validate(TestTenancy.Key, token, Now.AddSeconds(seconds)).Problem);
        }, iter: 2000);
    }

    [Fact]
    public void Any_single_byte_tamper_is_rejected()
    {
        Gen.Select(TenantName, Gen.Int[0, int.MaxValue], Gen.Byte[1, 255]).Sample((tenant, at, flip) =>
        {
            var bytes = Encoding.UTF8.GetBytes(TenantTokens.Issue(TestTenancy.Key, tenant, Now.AddHours(1)));
            var index = at % bytes.Length;
            bytes[index] ^= flip;
            var tampered = Encoding.UTF8.GetString(bytes);
            var (granted, problem) = TenantTokens.Validate(TestTenancy.Key, tampered, Now);
            Assert.True(granted is null, $"'{tampered}' (byte {index} ^ {flip}) granted '{granted}'");
            Assert.NotNull(problem);
        }, iter: 5000);
    }

    [Fact]
    public void The_silo_s_verified_tokens_answer_as_validation_does_for_genuine_expired_and_tampered_tokens()
    {
        var cache = new VerifiedTenantTokens(TestTenancy.Key, capacity: 3);
        Gen.Select(TenantName, Gen.Long[1, 10_000_000], Gen.Int[0, int.MaxValue], Gen.Byte[1, 255]).Sample((tenant, seconds, at, flip) =>
        {
            var token = TenantTokens.Issue(TestTenancy.Key, tenant, Now.AddSeconds(seconds));
            var bytes = Encoding.UTF8.GetBytes(token);
            bytes[at % bytes.Length] ^= flip;
            var tampered = Encoding.UTF8.GetString(bytes);
            // Twice each: the second answer comes from the cache when the first verified.
            foreach (var (candidate, when) in new[] { (token, Now), (token, Now), (token, Now.AddSeconds(seconds)), (tampered, Now), (tampered, Now) })
                Assert.Equal(TenantTokens.Validate(TestTenancy.Key, candidate, when), cache.Validate(candidate, when));
            Assert.InRange(cache.Count, 1, 3); // bounded: it starts over when full
        }, iter: 2000, threads: 1); // one thread, so that the count is exact (concurrent adders can overshoot by one each)
    }
}
