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

/// <summary>
/// What is left of a checkpoint that is no longer in the catalog while incremental checkpoints reuse some of its
/// shards: those shards (paths in its folder), kept until no retained checkpoint references them. Its
/// <see cref="Bytes"/> stay counted in the run's retained bytes until the last one goes (never under-counted).
/// </summary>
[GenerateSerializer, Immutable]
public sealed record HeldShards(
    [property: Id(0)] string Name,
    [property: Id(1)] string AttemptId,
    [property: Id(2)] long Bytes,
    [property: Id(3)] IReadOnlyList<string> Paths);

/// <summary>
/// A checkpoint between the first rank's Begin and its commit: O(1) in ranks and tensors. The ranks'
/// reports are held by the activation only (<see cref="CommitCollector"/>); after a failover the
/// ranks send them again.
/// </summary>
[GenerateSerializer]
public sealed class PendingCheckpoint
{
    [Id(0)] public required string Name { get; init; }
    [Id(1)] public required string AttemptId { get; init; }
    [Id(2)] public required long Epoch { get; init; }
    [Id(3)] public required int WorldSize { get; init; }
    [Id(4)] public required long? Iteration { get; init; }
    [Id(5)] public required DateTimeOffset StartedUtc { get; init; }
    /// <summary>The first Begin, or (in memory) the latest Begin or report; a checkpoint idle past the pending timeout is abandoned.</summary>
    [Id(8)] public DateTimeOffset LastProgressUtc { get; set; }
    /// <summary>The tensor list every rank began with; the union of the reports must match it.</summary>
    [Id(9)] public required TensorListSummary Tensors { get; init; }
}

/// <summary>
/// Blobs to delete. With <see cref="WorldSize"/> known, the names are computed (the manifest when
/// <see cref="IncludesManifest"/>, and the attempt's shards), so no listing is needed; entries saved
/// by the first release (WorldSize null) list the folder: the whole folder, or one attempt's shards.
/// With <see cref="Keys"/>, exactly those store keys (what an eviction frees while other shards of the
/// checkpoint are still reused), each only if nothing live needs it when the deletion runs.
/// </summary>
[GenerateSerializer, Immutable]
public sealed record PendingDeletion(
    [property: Id(0)] string CheckpointPrefix,
    [property: Id(1)] string? AttemptId,
    [property: Id(2)] int? WorldSize = null,
    [property: Id(3)] bool IncludesManifest = false,
    [property: Id(4)] IReadOnlyList<string>? Keys = null);
