namespace Checkpointing.Contracts;

/// <summary>A tenant (key = tenant name): what its credential holders may read, and its limits.</summary>
[GrainAccess(CallerAccess.Tenant)]
public interface ITenantGrain : IGrainWithStringKey
{
    Task<TenantView> Get();

    [GrainAccess(CallerAccess.Operator)]
    Task<TenantView> SetLimits(TenantLimits limits);

    Task<IReadOnlyList<string>> ListRuns();
}
