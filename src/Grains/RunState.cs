using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The persisted state of a training run: everything resume and retention depend on.</summary>
[GenerateSerializer]
public sealed class RunState
{
    /// <summary>True from Create until Delete; while false, the run's protocol, administration and read calls other than Create and RecoverCatalog are refused with <see cref="RunNotFoundException"/>.</summary>
    [Id(0)] public bool Created { get; set; }
    /// <summary>The run's periodic policy: the ranks save by it and retention applies its max_to_keep; a placeholder until the run is created.</summary>
    [Id(1)] public PeriodicPolicy Policy { get; set; } = new(1);
    /// <summary>The current attempt of the job, raised by each StartAttempt (0 before the first); calls carrying another epoch are refused.</summary>
    [Id(2)] public long Epoch { get; set; }
    /// <summary>
    /// The tag: the name of the checkpoint a resume loads, null before the first commit. A commit moves it unless the tagged
    /// checkpoint's iteration is newer (never backwards); TagLastCheckpoint moves it anywhere in the catalog.
    /// </summary>
    [Id(3)] public string? LastCheckpoint { get; set; }
    /// <summary>The newest committed checkpoints, ascending by iteration (commit order among equal iterations); older ones are archived (<see cref="RunCatalog"/>).</summary>
    [Id(4)] public List<CheckpointRecord> Catalog { get; set; } = [];
    /// <summary>The checkpoints begun and not yet committed or abandoned, by name.</summary>
    [Id(5)] public Dictionary<string, PendingCheckpoint> Pending { get; set; } = [];
    /// <summary>The outstanding checkpoint-now request, null when there is none; the commit of a checkpoint begun after it was made clears it.</summary>
    [Id(6)] public CheckpointRequest? CheckpointRequest { get; set; }
    /// <summary>When the run was created.</summary>
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
    /// <summary>The newest committed memory-tier checkpoint (docs/memory-tier.md), null when there is none; its commit writes only this.</summary>
    [Id(12)] public MemoryCheckpointRecord? Memory { get; set; }
    /// <summary>The current attempt's resume decision once made, so every rank gets the same one across a silo failure.</summary>
    [Id(13)] public ResumeDecisionRecord? Resume { get; set; }
}
