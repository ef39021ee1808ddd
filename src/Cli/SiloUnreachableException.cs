namespace Checkpointing.Cli;

/// <summary>The CLI could not connect to any gateway of the cluster.</summary>
public sealed class SiloUnreachableException(string message, Exception inner) : Exception(message, inner);
