namespace Checkpointing.Contracts;

/// <summary>
/// The run grain lost what it held in memory and reloads what is durable: it moved to another silo
/// (the reports it was collecting are gone), or saving its state failed (e.g. an ETag conflict, often
/// a retried write that had landed). Nothing was refused: the caller sends the same call again.
/// </summary>
[GenerateSerializer]
public sealed class RunMovedException : Exception
{
    /// <summary>Creates the exception; <paramref name="message"/> says what the grain lost or failed to write.</summary>
    public RunMovedException(string message) : base(message) { }
}
