namespace Checkpointing.Core;

/// <summary>A background (async) save failed; the checkpoint it was writing does not exist.</summary>
public sealed class CheckpointSaveFailedException(string message, Exception inner) : Exception(message, inner);
