namespace Checkpointing.Contracts;

/// <summary>What a tenant grain reports about itself (<see cref="ITenantGrain.Get"/>).</summary>
/// <param name="Tenant">The tenant's name.</param>
/// <param name="Limits">The limits in force: those an operator set, else the silo's defaults.</param>
/// <param name="RetainedBytesByRun">Each registered run (by run name) and the bytes it last reported retaining; runs report in
/// the background, so this lags their commits. Grants are not shown: the limit counts each run as the larger of these bytes and its grant.</param>
[GenerateSerializer, Immutable]
public sealed record TenantView(
    [property: Id(0)] string Tenant,
    [property: Id(1)] TenantLimits Limits,
    [property: Id(2)] IReadOnlyDictionary<string, long> RetainedBytesByRun)
{
    /// <summary>The sum of <see cref="RetainedBytesByRun"/>, in bytes (what <c>ckpt_tenant_retained_bytes</c> reports).</summary>
    public long RetainedBytes => RetainedBytesByRun.Values.Sum();
}
