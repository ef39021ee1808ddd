using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// A run's committed checkpoints, ascending by iteration (commit order among equal iterations), persisted
/// in two parts so that a commit's state write stays small however long the run keeps its checkpoints:
/// the newest entries in the run's state (<see cref="RunState.Catalog"/>, written with every change), the
/// older ones in an archive state written only when the run's part outgrows <see cref="TailLimit"/>.
/// An archived entry that leaves the catalog (evicted, replaced) is recorded by key in the run's state
/// (<see cref="RunState.ArchiveGone"/>) until the archive is next rewritten.
/// <para>
/// Crash safety: <see cref="SealAsync"/> writes the archive before the run's state. If it stops between
/// the two, the durable run state still lists the moved entries and the durable archive lists them too:
/// <see cref="Restore"/> counts an entry in both once, so the catalog reads the same either way.
/// </para>
/// </summary>
internal sealed class RunCatalog(IPersistentState<RunState> run, IPersistentState<CatalogArchive> archive, int tailLimit = RunCatalog.DefaultTailLimit)
{
    public const int DefaultTailLimit = 64;

    /// <summary>The run's state holds at most this many entries before older ones move to the archive.</summary>
    public int TailLimit { get; } = tailLimit >= RunGrainOptions.MinCatalogTailLimit ? tailLimit
        : throw new ArgumentOutOfRangeException(nameof(tailLimit), tailLimit, $"the catalog's tail limit must be at least {RunGrainOptions.MinCatalogTailLimit}.");
    /// <summary>How many of the newest entries stay in the run's state when older ones move.</summary>
    public int TailKept => TailLimit / 4;
    /// <summary>Removals of archived entries recorded before the archive is rewritten without them.</summary>
    public int GoneLimit => TailLimit;

    private List<CheckpointRecord> _entries = [];
    /// <summary>The entries by name (a name is in the catalog once): lookups run on every report, so they must not scan a long run's catalog.</summary>
    private readonly Dictionary<string, CheckpointRecord> _byName = new(StringComparer.Ordinal);
    /// <summary>Keys of the entries the durable archive holds.</summary>
    private HashSet<string> _archived = new(StringComparer.Ordinal);

    public IReadOnlyList<CheckpointRecord> Entries => _entries;

    /// <summary>The sum of the entries' bytes, kept as they come and go.</summary>
    public long Bytes { get; private set; }

    /// <summary>Whether <see cref="SealAsync"/> has work: the run's part or its removals outgrew their limits.</summary>
    public bool SealDue => run.State.Catalog.Count > TailLimit || run.State.ArchiveGone.Count > GoneLimit;

    public static string KeyOf(CheckpointRecord record) => $"{record.Name}/{record.AttemptId}";

    public CheckpointRecord? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>Rebuilds the catalog from both persisted parts (after activation or a reset of either).</summary>
    public void Restore()
    {
        var tail = run.State.Catalog;
        var inTail = tail.Select(KeyOf).ToHashSet(StringComparer.Ordinal);
        var gone = run.State.ArchiveGone.ToHashSet(StringComparer.Ordinal);
        _archived = archive.State.Entries.Select(KeyOf).ToHashSet(StringComparer.Ordinal);
        var archived = archive.State.Entries.Where(e => !gone.Contains(KeyOf(e)) && !inTail.Contains(KeyOf(e))).ToList();
        _entries = Merge(archived, tail);
        _byName.Clear();
        foreach (var entry in _entries) _byName[entry.Name] = entry;
        Bytes = _entries.Sum(e => e.Bytes);
    }

    public void Insert(CheckpointRecord record)
    {
        if (Find(record.Name) is not null) throw new InvalidOperationException($"{record.Name} is in the catalog already: remove it first.");
        InsertByIteration(_entries, record);
        InsertByIteration(run.State.Catalog, record);
        _byName[record.Name] = record;
        Bytes += record.Bytes;
    }

    public void Remove(CheckpointRecord record)
    {
        if (_entries.RemoveAll(c => Same(c, record)) == 0) return;
        run.State.Catalog.RemoveAll(c => Same(c, record));
        _byName.Remove(record.Name);
        Bytes -= record.Bytes;
        var key = KeyOf(record);
        if (_archived.Contains(key) && !run.State.ArchiveGone.Contains(key)) run.State.ArchiveGone.Add(key);
    }

    /// <summary>
    /// Moves all but the newest <see cref="TailKept"/> entries of the run's part into the archive, rewritten
    /// without the removed ones, then saves the run's state with <paramref name="writeRunState"/>. Call it
    /// only while the catalog in memory is the durable one (no unsaved change), one change at a time.
    /// </summary>
    public async Task SealAsync(Func<Task> writeRunState)
    {
        var tail = run.State.Catalog;
        var kept = tail.Skip(Math.Max(0, tail.Count - TailKept)).ToList();
        var keptKeys = kept.Select(KeyOf).ToHashSet(StringComparer.Ordinal);
        archive.State.Entries = _entries.Where(e => !keptKeys.Contains(KeyOf(e))).ToList();
        // Counted as archived before the write: one that fails may still have landed, and then a removal must leave a record.
        _archived.UnionWith(archive.State.Entries.Select(KeyOf));
        await archive.WriteStateAsync();
        _archived = archive.State.Entries.Select(KeyOf).ToHashSet(StringComparer.Ordinal);
        run.State.Catalog = kept;
        run.State.ArchiveGone = [];
        await writeRunState();
    }

    /// <summary>Deletes the archive (the run is deleted); the run's own state is the caller's, then <see cref="Restore"/>.</summary>
    public async Task ClearArchiveAsync()
    {
        await archive.ClearStateAsync();
        archive.State = new CatalogArchive();
    }

    private static bool Same(CheckpointRecord a, CheckpointRecord b) => a.Name == b.Name && a.AttemptId == b.AttemptId;

    private static long Order(CheckpointRecord record) => record.Iteration ?? long.MaxValue;

    private static void InsertByIteration(List<CheckpointRecord> list, CheckpointRecord record)
    {
        var index = list.FindLastIndex(c => Order(c) <= Order(record));
        list.Insert(index + 1, record);
    }

    /// <summary>
    /// Both parts in catalog order. Among equal iterations the archive's entries come first: they moved from
    /// the front of the run's part, and a later commit is inserted after every entry of its iteration.
    /// </summary>
    private static List<CheckpointRecord> Merge(List<CheckpointRecord> archived, List<CheckpointRecord> tail)
    {
        var merged = new List<CheckpointRecord>(archived.Count + tail.Count);
        int a = 0, t = 0;
        while (a < archived.Count || t < tail.Count)
            merged.Add(t == tail.Count || (a < archived.Count && Order(archived[a]) <= Order(tail[t])) ? archived[a++] : tail[t++]);
        return merged;
    }
}
