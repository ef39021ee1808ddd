namespace Checkpointing.Contracts;

[GenerateSerializer, Immutable]
public sealed record TenantView(
    [property: Id(0)] string Tenant,
    [property: Id(1)] TenantLimits Limits,
    [property: Id(2)] IReadOnlyDictionary<string, long> RetainedBytesByRun)
{
    public long RetainedBytes => RetainedBytesByRun.Values.Sum();
}
