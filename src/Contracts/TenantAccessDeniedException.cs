namespace Checkpointing.Contracts;

/// <summary>The caller's credential does not grant access to the target tenant.</summary>
[GenerateSerializer]
public sealed class TenantAccessDeniedException : RunRefusedException
{
    public TenantAccessDeniedException(string message) : base(message) { }
}
