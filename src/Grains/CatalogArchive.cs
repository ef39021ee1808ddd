using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>The older part of a run's catalog, persisted apart from the run's state (see <see cref="RunCatalog"/>).</summary>
[GenerateSerializer]
public sealed class CatalogArchive
{
    /// <summary>In catalog order; entries the run's state lists in <see cref="RunState.ArchiveGone"/> have left the catalog.</summary>
    [Id(0)] public List<CheckpointRecord> Entries { get; set; } = [];
}
