using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Checkpointing.Grains;

/// <summary>Silo settings for tenant credentials (section "Tenancy").</summary>
public sealed class TenancyOptions
{
    public const string Section = "Tenancy";

    /// <summary>Base64 HMAC key that signs tenant tokens (at least 32 bytes).</summary>
    public string SigningKey { get; set; } = "";

    /// <summary>How long a run commits against a retained-bytes grant before it asks its tenant again.</summary>
    public TimeSpan GrantLease { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>How often a tenant grain saves the retained bytes its runs reported (grants are saved at once).</summary>
    public TimeSpan ReportFlushPeriod { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Runs a tenant may have until an operator sets its limits (one tenant must not fill a silo with runs).</summary>
    public int DefaultMaxRuns { get; set; } = 1000;

    /// <summary>Bytes a tenant's checkpoints may retain until an operator sets its limits (1 TiB).</summary>
    public long DefaultMaxRetainedBytes { get; set; } = 1L << 40;

    public TenantLimits DefaultLimits => new(DefaultMaxRuns, DefaultMaxRetainedBytes);

    public byte[] KeyBytes()
    {
        var key = Convert.FromBase64String(SigningKey);
        return key.Length >= 32 ? key : throw new InvalidOperationException("Tenancy:SigningKey must be at least 32 bytes (base64).");
    }
}

/// <summary>
/// Default-deny access to the application's grain interfaces, by each member's
/// <see cref="GrainAccessAttribute"/>: tenant members need a tenant token (in <see cref="RequestContext"/>)
/// granting the target's tenant, operator members the operator's token, internal members a proof
/// that only a run grain of this cluster can attach (<see cref="InternalCallSigner"/>); an
/// unclassified member is refused. The caller's <see cref="IGrainCallContext.SourceId"/> is not
/// trusted for any of this: a hand-written client chooses the sending grain id the gateway forwards.
/// </summary>
public sealed class TenantAccessFilter(IOptions<TenancyOptions> options, InternalCallProof proof, TimeProvider time) : IIncomingGrainCallFilter
{
    private readonly VerifiedTenantTokens _tokens = new(options.Value.KeyBytes());

    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod is not { DeclaringType: { } type } method || type.Assembly != typeof(ITrainingRunGrain).Assembly)
        {
            // Orleans' own interfaces (timer ticks, grain extensions) on our grains are not for clients.
            if (context.TargetContext?.GrainInstance is TrainingRunGrain or TenantGrain && IsClient(context.SourceId))
                throw new TenantAccessDeniedException($"{context.InterfaceName}.{context.MethodName} may not be called by clients.");
            return context.Invoke();
        }

        var member = $"{type.Name}.{method.Name}";
        switch (GrainAccessAttribute.Of(method))
        {
            case CallerAccess.Internal:
                var presented = RequestContext.Get(InternalCallProof.RequestContextKey) as string;
                RequestContext.Remove(InternalCallProof.RequestContextKey);
                if (!proof.Verify(presented, context.TargetId, method))
                    throw new TenantAccessDeniedException($"{member} is internal to the cluster: only its grains may call it.");
                return context.Invoke();
            case CallerAccess.Tenant:
                CheckToken(context, member, operatorOnly: false);
                return context.Invoke();
            case CallerAccess.Operator:
                CheckToken(context, member, operatorOnly: true);
                return context.Invoke();
            default:
                throw new TenantAccessDeniedException($"{member} has no access classification, so nobody may call it.");
        }
    }

    private void CheckToken(IIncomingGrainCallContext context, string member, bool operatorOnly)
    {
        var targetTenant = TargetTenant(context.InterfaceMethod.DeclaringType!, context.TargetId);
        var (granted, problem) = _tokens.Validate(RequestContext.Get(TenantTokens.RequestContextKey) as string, time.GetUtcNow());
        if (granted is null) throw new TenantAccessDeniedException($"Access to tenant '{targetTenant}' denied: {problem}.");
        if (!TenantTokens.Grants(granted, targetTenant)) throw new TenantAccessDeniedException($"Access to tenant '{targetTenant}' denied: the credential is for tenant '{granted}'.");
        if (operatorOnly && granted != TenantTokens.OperatorTenant)
            throw new TenantAccessDeniedException($"Only the operator may call {member} on tenant '{targetTenant}'.");
    }

    /// <summary>
    /// The tenant a call is for, decided by the interface called, not by the key's shape: run grains
    /// are keyed "tenant/run", tenant grains by a valid tenant name; any other key is refused.
    /// </summary>
    private static string TargetTenant(Type grainInterface, GrainId target)
    {
        var key = target.Key.ToString()!;
        try
        {
            if (grainInterface == typeof(ITrainingRunGrain)) return RunId.Parse(key).Tenant;
            if (grainInterface == typeof(ITenantGrain)) return CheckpointName.Validate(key, "tenant name");
        }
        catch (ArgumentException e)
        {
            throw new TenantAccessDeniedException($"'{key}' is not a valid key for {grainInterface.Name}: {e.Message}");
        }
        throw new TenantAccessDeniedException($"{grainInterface.Name} is not keyed by tenant, so no tenant credential opens it.");
    }

    private static bool IsClient(GrainId? source) => source is { } id && GrainTypePrefix.IsClient(id);
}
