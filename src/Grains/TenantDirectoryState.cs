namespace Checkpointing.Grains;

/// <summary>The persisted state of the tenant directory: every tenant's name.</summary>
[GenerateSerializer]
public sealed class TenantDirectoryState
{
    /// <summary>The tenants that registered a run.</summary>
    [Id(0)] public HashSet<string> Tenants { get; set; } = [];
}
