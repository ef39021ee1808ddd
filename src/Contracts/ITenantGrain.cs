namespace Checkpointing.Contracts;

/// <summary>A tenant (key = tenant name): what its credential holders may read, and its limits.</summary>
[GrainAccess(CallerAccess.Tenant)]
public interface ITenantGrain : IGrainWithStringKey
{
    /// <summary>
    /// The tenant's limits (the silo's defaults until an operator sets them) and each registered run's retained bytes as
    /// last reported; runs report in the background, so these lag commits by up to <c>Runs:TenantReportDelay</c>.
    /// </summary>
    Task<TenantView> Get();

    /// <summary>
    /// Operator: replaces the tenant's limits (null = unlimited) and returns the tenant as it is now. Every run's grant is
    /// revoked, so later commits are checked against the new limits; nothing already stored is deleted, and at most one
    /// checkpoint per run that was already past its check can still commit. Negative limits are refused with
    /// <see cref="RunRefusedException"/>. Repeating the call is harmless (the grants are revoked again).
    /// </summary>
    [GrainAccess(CallerAccess.Operator)]
    Task<TenantView> SetLimits(TenantLimits limits);

    /// <summary>
    /// Up to <paramref name="limit"/> (at most <see cref="RunPage.MaxLimit"/>) of the tenant's runs from index <paramref name="offset"/> in
    /// ordinal order, each summarized by its own grain (<see cref="IRunReads.GetSummary"/>); a run that cannot answer is listed with
    /// its reported retained bytes and state <see cref="RunHealth.Waiting"/>. Refused with <see cref="ArgumentOutOfRangeException"/> for a negative offset or a limit out of range.
    /// </summary>
    Task<RunPage> GetRunPage(int offset, int limit);

    /// <summary>The names of the tenant's registered runs (without the "tenant/" prefix), in ordinal order.</summary>
    Task<IReadOnlyList<string>> ListRuns();
}
