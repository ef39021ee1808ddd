using System.Text;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
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
}
