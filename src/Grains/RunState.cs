using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;

namespace Checkpointing.Grains;

/// <summary>The persisted state of a training run: everything resume and retention depend on.</summary>
[GenerateSerializer]
public sealed class RunState
{
    [Id(0)] public bool Created { get; set; }
    [Id(1)] public PeriodicPolicy Policy { get; set; } = new(1);
    [Id(2)] public long Epoch { get; set; }
    [Id(3)] public string? LastCheckpoint { get; set; }
    /// <summary>Committed checkpoints, ascending by iteration (commit order among equal iterations).</summary>
    [Id(4)] public List<CheckpointRecord> Catalog { get; set; } = [];
    [Id(5)] public Dictionary<string, PendingCheckpoint> Pending { get; set; } = [];
    [Id(6)] public CheckpointRequest? CheckpointRequest { get; set; }
    [Id(7)] public DateTimeOffset CreatedUtc { get; set; }
    /// <summary>Store folders or shard sets whose deletion is owed (evicted, expired, aborted); survives a crash between the state write and the delete.</summary>
    [Id(8)] public List<PendingDeletion> Deletions { get; set; } = [];
}

/// <summary>A checkpoint between Begin and the last rank's report.</summary>
[GenerateSerializer]
public sealed class PendingCheckpoint
{
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public required string AttemptId { get; init; }
    [Id(2)] public required long Epoch { get; init; }
    [Id(3)] public required int WorldSize { get; init; }
    [Id(4)] public required long? Iteration { get; init; }
    [Id(5)] public required DateTimeOffset StartedUtc { get; init; }
    /// <summary>Tensor keys each rank writes, index = rank.</summary>
    [Id(6)] public required List<List<string>> KeysByRank { get; init; }
    [Id(7)] public Dictionary<int, ShardReport> Reports { get; set; } = [];
    /// <summary>Begin or the latest report; a checkpoint idle past the pending timeout is abandoned.</summary>
    [Id(8)] public DateTimeOffset LastProgressUtc { get; set; }
}

/// <summary>Blobs to delete: a whole checkpoint folder, or only the shards of one attempt in it.</summary>
[GenerateSerializer, Immutable]
public sealed record PendingDeletion([property: Id(0)] string CheckpointPrefix, [property: Id(1)] string? AttemptId);
