using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Microsoft.Extensions.Options;

namespace Checkpointing.Grains;

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

    /// <summary>
    /// Lets the call through when its caller may make it; otherwise throws <see cref="TenantAccessDeniedException"/> naming
    /// why, before the grain sees the call. Calls to interfaces outside the contracts pass, except clients' calls to Orleans'
    /// own interfaces on run and tenant grains.
    /// </summary>
    public Task Invoke(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod is not { DeclaringType: { } type } method || type.Assembly != typeof(ITrainingRunGrain).Assembly)
        {
            // Orleans' own interfaces (timer ticks, grain extensions) on our grains are not for clients.
            if (context.TargetContext?.GrainInstance is TrainingRunGrain or TenantGrain or TenantDirectoryGrain && IsClient(context.SourceId))
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
            if (grainInterface.IsAssignableFrom(typeof(ITrainingRunGrain))) return RunId.Parse(key).Tenant; // or one of the interfaces it joins
            if (grainInterface == typeof(ITenantGrain)) return CheckpointName.Validate(key, "tenant name");
            if (grainInterface == typeof(ITenantDirectory) && key == ITenantDirectory.Key) return TenantTokens.OperatorTenant; // spans every tenant
        }
        catch (ArgumentException e)
        {
            throw new TenantAccessDeniedException($"'{key}' is not a valid key for {grainInterface.Name}: {e.Message}");
        }
        throw new TenantAccessDeniedException($"{grainInterface.Name} is not keyed by tenant, so no tenant credential opens it.");
    }

    private static bool IsClient(GrainId? source) => source is { } id && GrainTypePrefix.IsClient(id);
}
