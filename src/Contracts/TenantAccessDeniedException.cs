namespace Checkpointing.Contracts;

/// <summary>The caller's credential does not grant access to the target tenant.</summary>
[GenerateSerializer]
public sealed class TenantAccessDeniedException : RunRefusedException
{
    /// <summary>Creates the exception; <paramref name="message"/> says which access was denied and why.</summary>
    public TenantAccessDeniedException(string message) : base(message) { }
}
