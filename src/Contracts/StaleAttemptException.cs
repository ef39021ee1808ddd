namespace Checkpointing.Contracts;

/// <summary>
/// The call carries an older attempt's epoch: that attempt was superseded by a job restart. Also thrown for an epoch newer
/// than the run's current one (an attempt never started: call <see cref="ICheckpointProtocol.StartAttempt"/> first).
/// </summary>
[GenerateSerializer]
public sealed class StaleAttemptException : RunRefusedException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the epoch the call carried and the current one.</summary>
    public StaleAttemptException(string message) : base(message) { }
}
