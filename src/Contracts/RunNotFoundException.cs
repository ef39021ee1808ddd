namespace Checkpointing.Contracts;

/// <summary>The run does not exist (never created, or deleted).</summary>
[GenerateSerializer]
public sealed class RunNotFoundException : RunRefusedException
{
    public RunNotFoundException(string message) : base(message) { }
}
