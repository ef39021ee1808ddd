using Checkpointing.Contracts;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// What a memory-tier holder keeps (docs/memory-tier.md): per run and rank, the objects of snapshots being put, and at most
/// <see cref="CompleteKept"/> complete ones: the newest, and the one the run grain committed (named by the rank) or else the
/// newest before it, whose commit is not known here. A rank deletes the older once the newer committed; the bound holds even when it cannot.
/// Every byte is counted against the budget as it arrives; a complete snapshot never changes.
/// </summary>
internal sealed class SnapshotHolder(long maxBytes)
{
    /// <summary>How many complete snapshots of one rank are kept at most.</summary>
    public const int CompleteKept = 2;
    private readonly Lock _gate = new();
    private readonly Dictionary<(RunId Run, int Rank), SortedDictionary<(long Epoch, long Iteration), HeldSnapshot>> _snapshots = [];
    private long _bytes;
    private long _droppedSinceCollect;
    /// <summary>Dropped bytes after which the holder asks the runtime to give freed chunks back at once, rather than at its next collection.</summary>
    private const long CollectAfterBytes = 256L << 20;

    private sealed class HeldSnapshot
    {
        public Dictionary<string, HeldObject> Objects { get; } = new(StringComparer.Ordinal);
        public bool Complete { get; set; }
        public long Bytes => Objects.Values.Sum(o => o.Length);
    }

    public long MaxBytes => maxBytes;

    /// <summary>Counts <paramref name="bytes"/> against the budget; false (and nothing counted) when they would exceed it.</summary>
    public bool TryReserve(long bytes)
    {
        lock (_gate)
        {
            if (_bytes + bytes > maxBytes) return false;
            _bytes += bytes;
            return true;
        }
    }

    /// <summary>Gives back reserved bytes that were not kept (a transfer that failed).</summary>
    public void Release(long bytes)
    {
        lock (_gate) _bytes -= bytes;
    }

    /// <summary>Adds an object (its bytes already reserved) to a snapshot being put; a problem, and the bytes given back, when the snapshot is complete.</summary>
    public string? Put(SnapshotKey key, string name, HeldObject held, long reserved)
    {
        lock (_gate)
        {
            var snapshots = Of(key);
            if (!snapshots.TryGetValue((key.Epoch, key.Iteration), out var snapshot)) snapshots[(key.Epoch, key.Iteration)] = snapshot = new HeldSnapshot();
            if (snapshot.Complete)
            {
                _bytes -= reserved;
                return $"snapshot {key.Path} is complete and cannot change";
            }
            if (snapshot.Objects.Remove(name, out var replaced)) _bytes -= replaced.Length;
            snapshot.Objects[name] = held;
            _bytes -= reserved - held.Length;
            return null;
        }
    }

    /// <summary>
    /// Marks a snapshot complete when it holds exactly <paramref name="lengths"/> (names and sizes); then drops this rank's
    /// incomplete older snapshots and complete ones beyond the newest <see cref="CompleteKept"/>, except <paramref name="keep"/>
    /// (the rank's committed snapshot, which an uncommitted one a dead attempt left must not push out). A problem when it does not match.
    /// </summary>
    public string? Complete(SnapshotKey key, IReadOnlyDictionary<string, long> lengths, SnapshotKey? keep = null)
    {
        lock (_gate)
        {
            var snapshots = Of(key);
            if (!snapshots.TryGetValue((key.Epoch, key.Iteration), out var snapshot)) return $"snapshot {key.Path} has no objects";
            var held = snapshot.Objects.ToDictionary(o => o.Key, o => o.Value.Length, StringComparer.Ordinal);
            if (held.Count != lengths.Count || lengths.Any(l => !held.TryGetValue(l.Key, out var length) || length != l.Value))
                return $"snapshot {key.Path} holds {Describe(held)}, not {Describe(lengths)}";
            snapshot.Complete = true;
            foreach (var (older, snapshotOf) in snapshots.Where(s => s.Key.CompareTo((key.Epoch, key.Iteration)) < 0 && !s.Value.Complete).ToList()) Drop(snapshots, older, snapshotOf);
            // Besides this one: the committed one when the rank names it, else the newest other (which the grain may have committed).
            var kept = keep is not null && snapshots.TryGetValue((keep.Epoch, keep.Iteration), out var named) && named.Complete ? (keep.Epoch, keep.Iteration) : (((long, long)?)null);
            var others = snapshots.Where(s => s.Value.Complete && s.Key != (key.Epoch, key.Iteration)).ToList();
            foreach (var (older, snapshotOf) in kept is { } committed ? others.Where(s => s.Key != committed) : others.SkipLast(CompleteKept - 1)) Drop(snapshots, older, snapshotOf);
            return null;
        }
    }

    /// <summary>The objects of a complete snapshot; null when it is not held or not complete.</summary>
    public IReadOnlyDictionary<string, HeldObject>? Get(SnapshotKey key)
    {
        lock (_gate) return Of(key).TryGetValue((key.Epoch, key.Iteration), out var snapshot) && snapshot.Complete ? snapshot.Objects : null;
    }

    /// <summary>Frees a snapshot, complete or not; false when it was not held.</summary>
    public bool Delete(SnapshotKey key)
    {
        lock (_gate)
        {
            var snapshots = Of(key);
            if (!snapshots.TryGetValue((key.Epoch, key.Iteration), out var snapshot)) return false;
            Drop(snapshots, (key.Epoch, key.Iteration), snapshot);
            return true;
        }
    }

    public HolderStats Stats()
    {
        lock (_gate)
        {
            var all = _snapshots.Values.SelectMany(s => s.Values).ToList();
            return new HolderStats(_bytes, maxBytes, all.Count(s => s.Complete), all.Count(s => !s.Complete));
        }
    }

    private SortedDictionary<(long Epoch, long Iteration), HeldSnapshot> Of(SnapshotKey key)
    {
        if (!_snapshots.TryGetValue((key.Run, key.Rank), out var snapshots)) _snapshots[(key.Run, key.Rank)] = snapshots = [];
        return snapshots;
    }

    private void Drop(SortedDictionary<(long Epoch, long Iteration), HeldSnapshot> snapshots, (long Epoch, long Iteration) snapshotKey, HeldSnapshot snapshot)
    {
        snapshots.Remove(snapshotKey);
        _bytes -= snapshot.Bytes;
        _droppedSinceCollect += snapshot.Bytes;
        if (_droppedSinceCollect < CollectAfterBytes) return;
        // A holder's memory is mostly its chunks: without this, freed gigabytes stay resident until the large-object heap's
        // next collection, and RSS would not show that superseded snapshots are gone.
        _droppedSinceCollect = 0;
        ThreadPool.QueueUserWorkItem(_ => GC.Collect(2, GCCollectionMode.Forced, blocking: true, compacting: false));
    }

    private static string Describe(IReadOnlyDictionary<string, long> lengths) =>
        lengths.Count == 0 ? "no objects" : string.Join(", ", lengths.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key} ({l.Value} bytes)"));
}
