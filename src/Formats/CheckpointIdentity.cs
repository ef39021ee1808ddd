namespace Checkpointing.Formats;

/// <summary>Who a checkpoint belongs to and where in training it was taken.</summary>
public sealed record CheckpointIdentity(string Run, string Name, long? Iteration, int WorldSize = 1);
