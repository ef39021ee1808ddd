namespace Checkpointing.Contracts;

/// <summary>The tenant's limits refuse this request.</summary>
[GenerateSerializer]
public sealed class TenantLimitException : RunRefusedException
{
    /// <summary>Creates the exception; <paramref name="message"/> says which limit refused the request.</summary>
    public TenantLimitException(string message) : base(message) { }
}
