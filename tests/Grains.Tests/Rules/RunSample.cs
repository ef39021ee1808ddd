using Checkpointing.Abstractions;
using Checkpointing.Contracts;

namespace Checkpointing.Grains.Tests.Rules;

/// <summary>A run's state, catalog and retention, built in memory for the rules' tests.</summary>
internal sealed class RunSample
{
    public static readonly RunId Id = new("acme", "r");
    private static readonly DateTimeOffset At = new(2026, 12, 7, 0, 0, 0, TimeSpan.Zero);

    public RunSample(PeriodicPolicy policy)
    {
        State.State.Created = true;
        State.State.Policy = policy;
        Catalog = new RunCatalog(State, new InMemoryState<CatalogArchive>());
        Catalog.Restore();
        Retention = new RunRetention(State, Catalog, Id);
    }

    public InMemoryState<RunState> State { get; } = new();
    public RunCatalog Catalog { get; }
    public RunRetention Retention { get; }

    public static string Folder(string name) => StoreLayout.CheckpointKey(Id.StorePrefix, name);

    /// <summary>Commits a checkpoint of one rank under <paramref name="attempt"/>, reusing "holder/shard" references, and tags it.</summary>
    public CheckpointRecord Commit(string name, long iteration, string attempt, long bytes = 100, params string[] reuses)
    {
        var record = new CheckpointRecord(name, iteration, bytes, 1, At, StoreLayout.ManifestKey(Folder(name)), attempt, 1, reuses.Length > 0 ? reuses : null);
        Catalog.Insert(record);
        State.State.LastCheckpoint = name;
        return record;
    }

    public static string ShardOf(string attempt) => StoreLayout.ShardName(0, 1, attempt);
}
