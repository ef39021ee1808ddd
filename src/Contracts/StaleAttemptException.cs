namespace Checkpointing.Contracts;

/// <summary>The call carries an older attempt's epoch: that attempt was superseded by a job restart.</summary>
[GenerateSerializer]
public sealed class StaleAttemptException : RunRefusedException
{
    public StaleAttemptException(string message) : base(message) { }
}
