namespace Checkpointing.Contracts;

/// <summary>A page of a tenant's runs in ordinal order of their names, with the tenant's totals and limits.</summary>
/// <param name="Tenant">The tenant.</param>
/// <param name="Limits">The limits in force.</param>
/// <param name="TotalRuns">How many runs the tenant has.</param>
/// <param name="RetainedBytes">What all its runs retain, as they last reported.</param>
/// <param name="Offset">The index of the page's first run among all of them.</param>
/// <param name="Runs">The page.</param>
[GenerateSerializer, Immutable]
public sealed record RunPage(
    [property: Id(0)] string Tenant,
    [property: Id(1)] TenantLimits Limits,
    [property: Id(2)] int TotalRuns,
    [property: Id(3)] long RetainedBytes,
    [property: Id(4)] int Offset,
    [property: Id(5)] IReadOnlyList<RunSummary> Runs)
{
    /// <summary>The most runs one page holds: a page is one round of parallel calls to its run grains.</summary>
    public const int MaxLimit = 200;
}
