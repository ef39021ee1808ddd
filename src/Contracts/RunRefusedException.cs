namespace Checkpointing.Contracts;

/// <summary>A control-plane request was refused; the message says why. Serializable across silos and clients.</summary>
[GenerateSerializer]
public class RunRefusedException : Exception
{
    public RunRefusedException(string message) : base(message) { }
}
