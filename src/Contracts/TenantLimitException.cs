namespace Checkpointing.Contracts;

/// <summary>The tenant's limits refuse this request.</summary>
[GenerateSerializer]
public sealed class TenantLimitException : RunRefusedException
{
    public TenantLimitException(string message) : base(message) { }
}
