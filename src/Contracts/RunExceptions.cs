namespace Checkpointing.Contracts;

/// <summary>A control-plane request was refused; the message says why. Serializable across silos and clients.</summary>
[GenerateSerializer]
public class RunRefusedException : Exception
{
    public RunRefusedException(string message) : base(message) { }
}

/// <summary>The call carries an older attempt's epoch: that attempt was superseded by a job restart.</summary>
[GenerateSerializer]
public sealed class StaleAttemptException : RunRefusedException
{
    public StaleAttemptException(string message) : base(message) { }
}

/// <summary>The run does not exist (never created, or deleted).</summary>
[GenerateSerializer]
public sealed class RunNotFoundException : RunRefusedException
{
    public RunNotFoundException(string message) : base(message) { }
}

/// <summary>The tenant's limits refuse this request.</summary>
[GenerateSerializer]
public sealed class TenantLimitException : RunRefusedException
{
    public TenantLimitException(string message) : base(message) { }
}

/// <summary>The caller's credential does not grant access to the target tenant.</summary>
[GenerateSerializer]
public sealed class TenantAccessDeniedException : RunRefusedException
{
    public TenantAccessDeniedException(string message) : base(message) { }
}

/// <summary>
/// The run grain lost what it held in memory and reloads what is durable: it moved to another silo
/// (the reports it was collecting are gone), or saving its state failed (e.g. an ETag conflict, often
/// a retried write that had landed). Nothing was refused: the caller sends the same call again.
/// </summary>
[GenerateSerializer]
public sealed class RunMovedException : Exception
{
    public RunMovedException(string message) : base(message) { }
}
