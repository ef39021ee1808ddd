namespace Checkpointing.Contracts;

/// <summary>
/// The cluster's tenants (one grain, key <see cref="Key"/>): every tenant that ever registered a run, for the operator's
/// view across tenants. Tenant grains add themselves; only the operator reads it.
/// </summary>
public interface ITenantDirectory : IGrainWithStringKey
{
    /// <summary>The directory's one key.</summary>
    public const string Key = "tenants";

    /// <summary>Adds a tenant (written once, when it is new); called by the tenant's grain.</summary>
    [GrainAccess(CallerAccess.Internal)]
    Task Add(string tenant);

    /// <summary>Operator: every tenant's name, in ordinal order.</summary>
    [GrainAccess(CallerAccess.Operator)]
    Task<IReadOnlyList<string>> List();
}
