using Orleans.Concurrency;

namespace Checkpointing.Contracts;

/// <summary>
/// The tenant's run registry and retained-bytes accounting, called only by the tenant's run grains
/// (key = tenant name, same activation as <see cref="ITenantGrain"/>). Clients are refused at the silo.
/// A run commits against a grant it holds (docs/cluster.md#control-plane-at-fleet-scale): the tenant is called when the run needs
/// more than its grant, when the grant's lease ends, and (off the commit path) to report retained bytes.
/// </summary>
[GrainAccess(CallerAccess.Internal)]
public interface ITenantAccounting : IGrainWithStringKey
{
    /// <summary>Registers a new run; refused when the tenant is at its run limit.</summary>
    Task RegisterRun(string run);

    /// <summary>
    /// Called by a run grain deleting its run, after its blobs are gone: removes the run from the registry with its retained bytes
    /// and grant, freeing its share of the limits.
    /// Idempotent: an unknown run is a no-op. Throws <see cref="ArgumentException"/> for an invalid run name.
    /// </summary>
    Task UnregisterRun(string run);

    /// <summary>Grants the run at least <paramref name="retainedBytes"/>; refuses (throws) when that would take the tenant over its limit.</summary>
    [AlwaysInterleave]
    Task<RetainedBytesGrant> Reserve(string run, long retainedBytes);

    /// <summary>What the run retains now; with <paramref name="releaseGrant"/> the run gives its grant back (it no longer commits against it).</summary>
    [AlwaysInterleave]
    Task Report(string run, long retainedBytes, bool releaseGrant);
}
