namespace Checkpointing.TrainerAgent;

/// <summary>What a memory-tier holder keeps now: bytes held against its budget, and its complete and incomplete snapshots.</summary>
public sealed record HolderStats(long BytesHeld, long MaxBytes, int CompleteSnapshots, int IncompleteSnapshots);
