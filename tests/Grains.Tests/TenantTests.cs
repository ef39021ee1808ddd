using Checkpointing.TestSupport;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;

namespace Checkpointing.Grains.Tests;

[Collection(nameof(TwoSilos))]
public sealed class TenantTests(TwoSiloCluster fixture)
{
    [Fact]
    public async Task Calls_without_a_valid_credential_for_the_tenant_are_denied()
    {
        TestTenancy.ActAs("alpha");
        var grain = fixture.Client.GetGrain<ITrainingRunGrain>("alpha/r1");
        await grain.Create(new PeriodicPolicy(10));

        TestTenancy.ActAs("beta");
        var other = await Assert.ThrowsAsync<TenantAccessDeniedException>(() => grain.Get());
        Assert.Contains("the credential is for tenant 'beta'", other.Message);
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => fixture.Client.GetGrain<ITenantGrain>("alpha").ListRuns());

        Orleans.Runtime.RequestContext.Remove(TenantTokens.RequestContextKey);
        var none = await Assert.ThrowsAsync<TenantAccessDeniedException>(() => grain.Get());
        Assert.Contains("no tenant credential was sent", none.Message);

        Orleans.Runtime.RequestContext.Set(TenantTokens.RequestContextKey, TenantTokens.Issue(TestTenancy.Key, "alpha", DateTimeOffset.UtcNow.AddSeconds(-1)));
        Assert.Contains("expired", (await Assert.ThrowsAsync<TenantAccessDeniedException>(() => grain.Get())).Message);

        Orleans.Runtime.RequestContext.Set(TenantTokens.RequestContextKey, TenantTokens.Issue(new byte[32], "alpha", DateTimeOffset.UtcNow.AddHours(1)));
        Assert.Contains("signature is invalid", (await Assert.ThrowsAsync<TenantAccessDeniedException>(() => grain.Get())).Message);

        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        Assert.Equal("alpha/r1", (await grain.Get()).Id.Key);
    }

    [Fact]
    public async Task Only_the_operator_sets_limits_and_the_run_limit_is_enforced()
    {
        TestTenancy.ActAs("gamma");
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => fixture.Client.GetGrain<ITenantGrain>("gamma").SetLimits(new TenantLimits(1, null)));
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        await fixture.Client.GetGrain<ITenantGrain>("gamma").SetLimits(new TenantLimits(1, null));
        TestTenancy.ActAs("gamma");
        await fixture.Client.GetGrain<ITrainingRunGrain>("gamma/one").Create(new PeriodicPolicy(10));
        var e = await Assert.ThrowsAsync<TenantLimitException>(() => fixture.Client.GetGrain<ITrainingRunGrain>("gamma/two").Create(new PeriodicPolicy(10)));
        Assert.Contains("its limit is 1", e.Message);
    }

    [Fact]
    public async Task A_commit_over_the_retained_bytes_limit_is_refused_and_the_previous_tag_stays()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        var tenantGrain = fixture.Client.GetGrain<ITenantGrain>("delta");
        var job = new FakeJob(fixture.Client, fixture.Store, new RunId("delta", "r"), worldSize: 2);
        TestTenancy.ActAs("delta");
        await job.Grain.Create(new PeriodicPolicy(10));
        job.Epoch = await job.Grain.StartAttempt();
        await job.SaveAsync("model_0000009", 9);
        var oneCheckpoint = (await job.Grain.GetLastCheckpoint())!.Bytes;
        await Eventually.Equal(oneCheckpoint, async () => (await tenantGrain.Get()).RetainedBytes); // reported off the commit path

        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        await tenantGrain.SetLimits(new TenantLimits(null, oneCheckpoint + oneCheckpoint / 2));
        TestTenancy.ActAs("delta");
        var e = await Assert.ThrowsAsync<TenantLimitException>(() => job.SaveAsync("model_0000019", 19));
        Assert.Contains("its limit is", e.Message);
        Assert.Equal("model_0000009", (await job.Grain.GetLastCheckpoint())!.Name);
        Assert.Single(await job.Grain.ListCheckpoints());
        Assert.Empty((await job.Grain.Get()).Pending);
        var runDir = Path.Combine(fixture.StoreRoot, "tenants", "delta", "runs", "r");
        Assert.Equal(["model_0000009"], Directory.GetDirectories(runDir).Select(Path.GetFileName));
    }

    [Fact]
    public void Tokens_are_signed_bound_to_a_tenant_and_expire()
    {
        var token = TenantTokens.Issue(TestTenancy.Key, "acme", DateTimeOffset.UtcNow.AddMinutes(5));
        Assert.Equal(("acme", null), TenantTokens.Validate(TestTenancy.Key, token, DateTimeOffset.UtcNow));
        var forged = token.Replace("v1.acme.", "v1.evil.", StringComparison.Ordinal);
        Assert.Equal("the tenant credential's signature is invalid", TenantTokens.Validate(TestTenancy.Key, forged, DateTimeOffset.UtcNow).Problem);
        Assert.Equal("the tenant credential has expired", TenantTokens.Validate(TestTenancy.Key, token, DateTimeOffset.UtcNow.AddMinutes(6)).Problem);
        Assert.Throws<ArgumentException>(() => TenantTokens.Issue(TestTenancy.Key, "../x", DateTimeOffset.UtcNow));
    }
}
