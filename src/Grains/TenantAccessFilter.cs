using Checkpointing.Abstractions.Runs;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace Checkpointing.Grains;

/// <summary>Silo settings for tenant credentials (section "Tenancy").</summary>
public sealed class TenancyOptions
{
    public const string Section = "Tenancy";

    /// <summary>Base64 HMAC key that signs tenant tokens (at least 32 bytes).</summary>
    public string SigningKey { get; set; } = "";

    public byte[] KeyBytes()
    {
        var key = Convert.FromBase64String(SigningKey);
        return key.Length >= 32 ? key : throw new InvalidOperationException("Tenancy:SigningKey must be at least 32 bytes (base64).");
    }
}

/// <summary>
/// Every call from outside the cluster to a run or tenant grain must carry a tenant token (in
/// <see cref="RequestContext"/>) that grants the target's tenant; only the operator's token may
/// change tenant limits. Calls between grains of the silo are trusted: a client cannot pose as a grain.
/// </summary>
public sealed class TenantAccessFilter(IOptions<TenancyOptions> options, TimeProvider time) : IIncomingGrainCallFilter
{
    private readonly byte[] _key = options.Value.KeyBytes();

    public Task Invoke(IIncomingGrainCallContext context)
    {
        // Only the run and tenant interfaces are guarded: timer ticks and other system calls pass
        // through filters too, without any caller's RequestContext.
        var targetTenant = context.InterfaceMethod.DeclaringType switch
        {
            var t when t == typeof(ITrainingRunGrain) => RunId.Parse(context.TargetId.Key.ToString()!).Tenant,
            var t when t == typeof(ITenantGrain) => context.TargetId.Key.ToString(),
            _ => null,
        };
        if (targetTenant is null || IsFromGrain(context.SourceId)) return context.Invoke();

        var (granted, problem) = TenantTokens.Validate(_key, RequestContext.Get(TenantTokens.RequestContextKey) as string, time.GetUtcNow());
        if (granted is null) throw new TenantAccessDeniedException($"Access to tenant '{targetTenant}' denied: {problem}.");
        if (!TenantTokens.Grants(granted, targetTenant)) throw new TenantAccessDeniedException($"Access to tenant '{targetTenant}' denied: the credential is for tenant '{granted}'.");
        if (context.MethodName == nameof(ITenantGrain.SetLimits) && granted != TenantTokens.OperatorTenant)
            throw new TenantAccessDeniedException($"Only the operator may change tenant '{targetTenant}''s limits.");
        return context.Invoke();
    }

    /// <summary>Clients have system grain types ("sys.client…"); application grains run inside the silo.</summary>
    private static bool IsFromGrain(GrainId? source) =>
        source is { } id && !id.Type.ToString()!.StartsWith("sys.", StringComparison.Ordinal);
}
