namespace Checkpointing.Contracts;

/// <summary>A control-plane request was refused; the message says why. Serializable across silos and clients.</summary>
[GenerateSerializer]
public class RunRefusedException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> says why the request was refused.</summary>
    public RunRefusedException(string message) : base(message) { }
}
