namespace Checkpointing.Contracts;

/// <summary>What a run grain reports about itself.</summary>
[GenerateSerializer, Immutable]
public sealed record RunView(
    [property: Id(0)] RunId Id,
    [property: Id(1)] PeriodicPolicy Policy,
    [property: Id(2)] long Epoch,
    [property: Id(3)] string? LastCheckpoint,
    [property: Id(4)] IReadOnlyList<CheckpointRecord> Catalog,
    [property: Id(5)] IReadOnlyList<PendingView> Pending,
    [property: Id(6)] CheckpointRequest? CheckpointRequest,
    [property: Id(7)] DateTimeOffset CreatedUtc,
    [property: Id(8)] string HostedBy,
    [property: Id(9)] long HeldBytes = 0,
    [property: Id(10)] RunHealthView? Health = null,
    [property: Id(11)] MemoryCheckpointRecord? MemoryCheckpoint = null)
{
    /// <summary>What the tenant's quota counts: the catalog's written bytes, and shards of evicted checkpoints that incremental ones still reuse (<see cref="HeldBytes"/>).</summary>
    public long RetainedBytes => Catalog.Sum(c => c.Bytes) + HeldBytes;
}
