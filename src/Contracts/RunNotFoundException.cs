namespace Checkpointing.Contracts;

/// <summary>The run does not exist (never created, or deleted).</summary>
[GenerateSerializer]
public sealed class RunNotFoundException : RunRefusedException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the run.</summary>
    public RunNotFoundException(string message) : base(message) { }
}
