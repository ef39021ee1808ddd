using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The persisted state of a training run: everything resume and retention depend on.</summary>
[GenerateSerializer]
public sealed class RunState
{
    [Id(0)] public bool Created { get; set; }
    [Id(1)] public PeriodicPolicy Policy { get; set; } = new(1);
    [Id(2)] public long Epoch { get; set; }
    [Id(3)] public string? LastCheckpoint { get; set; }
    /// <summary>The newest committed checkpoints, ascending by iteration (commit order among equal iterations); older ones are archived (<see cref="RunCatalog"/>).</summary>
    [Id(4)] public List<CheckpointRecord> Catalog { get; set; } = [];
    [Id(5)] public Dictionary<string, PendingCheckpoint> Pending { get; set; } = [];
    [Id(6)] public CheckpointRequest? CheckpointRequest { get; set; }
    [Id(7)] public DateTimeOffset CreatedUtc { get; set; }
    /// <summary>Store folders or shard sets whose deletion is owed (evicted, expired, aborted); survives a crash between the state write and the delete.</summary>
    [Id(8)] public List<PendingDeletion> Deletions { get; set; } = [];
    /// <summary>Shards of checkpoints that are gone (evicted, replaced) which retained incremental checkpoints still reuse.</summary>
    [Id(9)] public List<HeldShards> Held { get; set; } = [];
    /// <summary>
    /// The history as states written before it had a state of its own (<see cref="RunHistory"/>) carry it: moved there
    /// on activation, and empty in every state written since.
    /// </summary>
    [Id(10)] public List<HistoryEntry> LegacyHistory { get; set; } = [];
    /// <summary>Keys ("name/attempt") of entries that left the catalog while the archive still lists them (<see cref="RunCatalog"/>).</summary>
    [Id(11)] public List<string> ArchiveGone { get; set; } = [];
}
