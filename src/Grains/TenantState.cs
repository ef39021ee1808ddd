using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The persisted state of a tenant grain: its limits, its runs' retained bytes and their grants.</summary>
[GenerateSerializer]
public sealed class TenantState
{
    /// <summary>The limits an operator set (null = unlimited); ignored while <see cref="LimitsSet"/> is false.</summary>
    [Id(0)] public TenantLimits Limits { get; set; } = new(null, null);
    /// <summary>Every registered run with the retained bytes it last reported.</summary>
    [Id(1)] public Dictionary<string, long> RetainedBytesByRun { get; set; } = [];
    /// <summary>Live grants: bytes a run may commit up to without asking (docs/cluster.md#control-plane-at-fleet-scale).</summary>
    [Id(2)] public Dictionary<string, long> GrantedBytesByRun { get; set; } = [];
    /// <summary>False until an operator sets the tenant's limits: until then the silo's defaults apply.</summary>
    [Id(3)] public bool LimitsSet { get; set; }
    /// <summary>Whether the tenant directory holds this tenant (<see cref="Contracts.ITenantDirectory"/>).</summary>
    [Id(4)] public bool Listed { get; set; }
}
