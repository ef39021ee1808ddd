using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>A run's checkpoint history as persisted: oldest first, at most <see cref="RunHistoryLog.MaxEntries"/> entries.</summary>
[GenerateSerializer]
public sealed class RunHistory
{
    /// <summary>The entries, oldest first: committed saves and loads.</summary>
    [Id(0)] public List<HistoryEntry> Entries { get; set; } = [];
}
