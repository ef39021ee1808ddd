
namespace Checkpointing.Formats;

/// <summary>
/// The committed checkpoints of a run as read at one moment. <paramref name="Unreadable"/> names checkpoints
/// whose manifest did not parse or could not be read: their references are unknown, so while there are any,
/// no shard may be deleted on the grounds that nothing references it.
/// </summary>
public sealed record RunSnapshot(IReadOnlyList<EarlierCheckpoint> Committed, IReadOnlyList<string> Unreadable)
{
    /// <summary>The store keys of every shard the readable manifests reference, in their own folders or reused from others.</summary>
    public HashSet<string> ReferencedShardKeys(string runPrefix, string? except = null) =>
        RunCheckpoints.ReferencedShardKeys(runPrefix, Committed.Where(c => c.Name != except));
}
