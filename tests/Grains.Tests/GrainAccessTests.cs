using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// Every member of every grain interface, called from a client under every kind of credential,
/// gets exactly what its <see cref="GrainAccessAttribute"/> classification promises.
/// </summary>
[Collection(nameof(TwoSilos))]
public sealed class GrainAccessTests(TwoSiloCluster fixture)
{
    private enum Caller { OtherTenant, TargetTenant, NoToken, Operator }

    /// <summary>How each grain interface is keyed; a new interface must be added here (and classified) to pass.</summary>
    private static readonly Dictionary<Type, Func<string, string>> KeyFor = new()
    {
        [typeof(ICheckpointProtocol)] = tenant => $"{tenant}/probe",
        [typeof(IRunAdministration)] = tenant => $"{tenant}/probe",
        [typeof(IRunReads)] = tenant => $"{tenant}/probe",
        [typeof(ITenantGrain)] = tenant => tenant,
        [typeof(ITenantAccounting)] = tenant => tenant,
        [typeof(IRunAccounting)] = tenant => $"{tenant}/probe",
        [typeof(ITenantDirectory)] = _ => ITenantDirectory.Key, // one grain across tenants: the operator's
    };

    private static readonly Dictionary<Type, object> SampleArgument = new()
    {
        [typeof(string)] = "probe",
        [typeof(long)] = 1L,
        [typeof(int)] = 0,
        [typeof(PeriodicPolicy)] = new PeriodicPolicy(10),
        [typeof(TenantLimits)] = new TenantLimits(null, null),
        [typeof(BeginCheckpointRequest)] = new BeginCheckpointRequest("model_0000009", 9, 1, 0, 1, TensorListSummary.Of([])),
        [typeof(CommitWaitRequest)] = new CommitWaitRequest("model_0000009", "0000", 0, 1, TimeSpan.FromSeconds(1)),
        [typeof(LoadReport)] = new LoadReport("model_0000009", 0, 1, 0.5, 64),
        [typeof(bool)] = false,
        [typeof(TimeSpan)] = TimeSpan.Zero,
        [typeof(RankHeartbeat)] = new RankHeartbeat(0, 1, 1, 0, 0.5, 0.1),
        [typeof(ShardReport)] = new ShardReport("model_0000009", "0000", 0, 1, new ShardInfo("shard.safetensors", 8, "crc64:0"), new Dictionary<string, TensorInfo>(), "{}"),
        [typeof(HolderAnnouncement)] = new HolderAnnouncement(1, 0, 1, new HolderRef("http://127.0.0.1:7400", "probe")),
        [typeof(MemorySnapshotReport)] = new MemorySnapshotReport(1, 0, 1, "memory_0000004", 4, [new HolderRef("http://127.0.0.1:7400", "probe")], 64),
        [typeof(ResumeRequest)] = new ResumeRequest(1, 0, 1, "probe"),
        [typeof(ResumeOutcome)] = new ResumeOutcome(1, 0, 1, "memory_0000004", false, "probe"),
    };

    public static IEnumerable<object[]> Members() =>
        typeof(ITrainingRunGrain).Assembly.GetTypes()
            .Where(t => t.IsInterface && typeof(IGrain).IsAssignableFrom(t))
            .SelectMany(t => t.GetMethods().Select(m => new object[] { t, m.Name }));

    [Fact]
    public void Every_grain_interface_member_is_classified_and_keyed()
    {
        var members = Members().Select(m => ((Type)m[0]).GetMethod((string)m[1])!).ToList();
        Assert.True(members.Count >= 19, $"found only {members.Count} grain interface members");
        Assert.All(members, m => Assert.True(GrainAccessAttribute.Of(m) is not null, $"{m.DeclaringType!.Name}.{m.Name} has no [GrainAccess] classification"));
        Assert.All(members.Select(m => m.DeclaringType!).Distinct(), t => Assert.True(KeyFor.ContainsKey(t), $"{t.Name} has no key shape in {nameof(KeyFor)}"));
    }

    [Theory]
    [MemberData(nameof(Members))]
    public async Task A_client_gets_exactly_what_the_classification_allows(Type grainInterface, string methodName)
    {
        var method = grainInterface.GetMethod(methodName)!;
        var access = GrainAccessAttribute.Of(method) ?? throw new Xunit.Sdk.XunitException($"{grainInterface.Name}.{methodName} is not classified");
        var tenant = $"acl-{Guid.NewGuid():N}"[..16];
        var grain = fixture.Client.GetGrain(grainInterface, KeyFor[grainInterface](tenant));
        var args = method.GetParameters().Select(p => SampleArgument.TryGetValue(p.ParameterType, out var v) ? v
            : throw new Xunit.Sdk.XunitException($"no sample argument of type {p.ParameterType.Name} for {grainInterface.Name}.{methodName}")).ToArray();

        foreach (var caller in Enum.GetValues<Caller>())
        {
            var allowed = access switch
            {
                CallerAccess.Tenant => caller is Caller.TargetTenant or Caller.Operator,
                CallerAccess.Operator => caller is Caller.Operator,
                _ => false,
            };
            ActAs(caller, tenant);
            Exception? outcome = null;
            try { await (Task)method.Invoke(grain, args)!; }
            catch (Exception e) { outcome = e; }
            if (allowed) Assert.False(outcome is TenantAccessDeniedException, $"{grainInterface.Name}.{methodName} ({access}) refused {caller}: {outcome?.Message}");
            else Assert.True(outcome is TenantAccessDeniedException, $"{grainInterface.Name}.{methodName} ({access}) let {caller} through: {outcome?.GetType().Name ?? "no error"}");
        }
    }

    [Fact]
    public async Task A_tenant_cannot_unregister_a_run_to_lift_its_run_limit()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        await fixture.Client.GetGrain<ITenantGrain>("lift").SetLimits(new TenantLimits(1, null));
        TestTenancy.ActAs("lift");
        await fixture.Client.GetGrain<ITrainingRunGrain>("lift/one").Create(new PeriodicPolicy(10));

        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => fixture.Client.GetGrain<ITenantAccounting>("lift").UnregisterRun("one"));
        await Assert.ThrowsAsync<TenantLimitException>(() => fixture.Client.GetGrain<ITrainingRunGrain>("lift/two").Create(new PeriodicPolicy(10)));
        await Assert.ThrowsAsync<TenantLimitException>(() => fixture.Client.GetGrain<ITrainingRunGrain>("lift/three").Create(new PeriodicPolicy(10)));
        Assert.Equal(["one"], await fixture.Client.GetGrain<ITenantGrain>("lift").ListRuns());
    }

    [Fact]
    public async Task A_tenant_cannot_report_negative_bytes_to_escape_its_byte_quota()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        await fixture.Client.GetGrain<ITenantGrain>("quota").SetLimits(new TenantLimits(null, 1000));
        TestTenancy.ActAs("quota");
        await fixture.Client.GetGrain<ITrainingRunGrain>("quota/r").Create(new PeriodicPolicy(10));

        var accounting = fixture.Client.GetGrain<ITenantAccounting>("quota");
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.Report("r", -1_000_000_000_000, releaseGrant: true));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.Reserve("r", 0));
        Assert.Equal(0, (await fixture.Client.GetGrain<ITenantGrain>("quota").Get()).RetainedBytes);
    }

    [Fact]
    public async Task A_tenant_cannot_register_fake_runs()
    {
        TestTenancy.ActAs("fakes");
        var accounting = fixture.Client.GetGrain<ITenantAccounting>("fakes");
        for (var i = 0; i < 20; i++) await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.RegisterRun($"fake{i}"));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.Report("fake-report", 5, releaseGrant: false));
        Assert.Empty(await fixture.Client.GetGrain<ITenantGrain>("fakes").ListRuns());
    }

    [Fact]
    public async Task A_forged_or_misdirected_internal_call_proof_is_refused()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        var accounting = fixture.Client.GetGrain<ITenantAccounting>("forge");
        RequestContext.Set(InternalCallProof.RequestContextKey, Convert.ToBase64String(new byte[32]));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.RegisterRun("x"));

        // A genuine proof is bound to one member of one grain: it opens nothing else.
        var proof = ProofIssuedAt(DateTimeOffset.UtcNow);
        var other = fixture.Client.GetGrain<ITenantAccounting>("forge-other");
        RequestContext.Set(InternalCallProof.RequestContextKey, proof.For(other.GetGrainId(), typeof(ITenantAccounting).GetMethod(nameof(ITenantAccounting.RegisterRun))!));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => accounting.RegisterRun("x"));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => other.UnregisterRun("x"));
        RequestContext.Remove(InternalCallProof.RequestContextKey);
        Assert.Empty(await fixture.Client.GetGrain<ITenantGrain>("forge").ListRuns());
    }

    [Fact]
    public async Task A_grain_key_of_the_wrong_shape_for_its_interface_is_refused_to_every_credential()
    {
        foreach (var tenant in new[] { "shape", TenantTokens.OperatorTenant })
        {
            TestTenancy.ActAs(tenant);
            await Assert.ThrowsAsync<TenantAccessDeniedException>(() => fixture.Client.GetGrain<ITenantGrain>("shape/run").Get());
            // A run grain parses its key when it activates, before any call reaches it.
            var run = await Assert.ThrowsAsync<ArgumentException>(() => fixture.Client.GetGrain<ITrainingRunGrain>("shape").Get());
            Assert.Contains("must be 'tenant/run'", run.Message);
        }
        TestTenancy.ActAs("shape");
        Assert.Empty(await fixture.Client.GetGrain<ITenantGrain>("shape").ListRuns());
    }

    [Fact]
    public async Task An_internal_call_proof_is_good_for_minutes_only_and_its_issue_time_is_signed()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        var accounting = fixture.Client.GetGrain<ITenantAccounting>("replay");
        var register = typeof(ITenantAccounting).GetMethod(nameof(ITenantAccounting.RegisterRun))!;
        string IssuedAgo(TimeSpan ago) => ProofIssuedAt(DateTimeOffset.UtcNow - ago).For(accounting.GetGrainId(), register);
        Task RegisterWith(string proof, string run)
        {
            RequestContext.Set(InternalCallProof.RequestContextKey, proof);
            return accounting.RegisterRun(run);
        }

        var captured = IssuedAgo(InternalCallProof.Validity + TimeSpan.FromMinutes(1));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => RegisterWith(captured, "stale"));
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => RegisterWith(IssuedAgo(-InternalCallProof.ClockSkew - TimeSpan.FromMinutes(1)), "future"));
        var restamped = $"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}{captured[captured.IndexOf('.')..]}";
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => RegisterWith(restamped, "restamped"));
        await RegisterWith(IssuedAgo(TimeSpan.FromMinutes(1)), "fresh");
        await RegisterWith(IssuedAgo(-TimeSpan.FromSeconds(30)), "skewed");
        RequestContext.Remove(InternalCallProof.RequestContextKey);
        Assert.Equal(["fresh", "skewed"], (await fixture.Client.GetGrain<ITenantGrain>("replay").ListRuns()).Order());
    }

    [Fact]
    public async Task The_tenant_grain_checks_accounting_arguments_itself()
    {
        TestTenancy.ActAs(TenantTokens.OperatorTenant);
        var proof = ProofIssuedAt(DateTimeOffset.UtcNow);
        var accounting = fixture.Client.GetGrain<ITenantAccounting>("depth");
        Task Signed(string member, Func<ITenantAccounting, Task> call)
        {
            RequestContext.Set(InternalCallProof.RequestContextKey, proof.For(accounting.GetGrainId(), typeof(ITenantAccounting).GetMethod(member)!));
            return call(accounting);
        }

        await Signed(nameof(ITenantAccounting.RegisterRun), a => a.RegisterRun("real"));
        var negative = await Assert.ThrowsAsync<RunRefusedException>(() => Signed(nameof(ITenantAccounting.Report), a => a.Report("real", -5, releaseGrant: false)));
        Assert.Contains("never negative", negative.Message);
        var unknown = await Assert.ThrowsAsync<RunRefusedException>(() => Signed(nameof(ITenantAccounting.Reserve), a => a.Reserve("ghost", 5)));
        Assert.Contains("not registered", unknown.Message);
        await Assert.ThrowsAsync<ArgumentException>(() => Signed(nameof(ITenantAccounting.RegisterRun), a => a.RegisterRun("../escape")));
        RequestContext.Remove(InternalCallProof.RequestContextKey);
        Assert.Equal(["real"], await fixture.Client.GetGrain<ITenantGrain>("depth").ListRuns());
    }

    private static InternalCallProof ProofIssuedAt(DateTimeOffset now) =>
        new(Options.Create(new TenancyOptions { SigningKey = TestTenancy.SigningKey }), new FixedClock(now));

    private sealed class FixedClock(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }

    private static void ActAs(Caller caller, string tenant)
    {
        switch (caller)
        {
            case Caller.OtherTenant: TestTenancy.ActAs("someone-else"); break;
            case Caller.TargetTenant: TestTenancy.ActAs(tenant); break;
            case Caller.Operator: TestTenancy.ActAs(TenantTokens.OperatorTenant); break;
            default: RequestContext.Remove(TenantTokens.RequestContextKey); break;
        }
    }
}
