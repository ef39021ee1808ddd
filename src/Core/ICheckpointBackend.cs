using Checkpointing.Abstractions;
using Checkpointing.Formats;

namespace Checkpointing.Core;

/// <summary>
/// Where a <see cref="Checkpointer"/> keeps its checkpoints and its last-checkpoint tag: a local
/// folder (<see cref="LocalBackend"/>) or a run grain plus blob store (the cluster library's <c>ClusterBackend</c>).
/// The checkpointer's public API is the same over either.
/// </summary>
public interface ICheckpointBackend
{
    /// <summary>What users see as a checkpoint's "file": a folder path, or ckpt://tenant/run/NAME.</summary>
    string PathOf(string name);

    /// <summary>Writes and commits checkpoint <paramref name="name"/> and tags it last; returns once it is complete.</summary>
    /// <param name="name">The checkpoint's name, a valid <see cref="CheckpointName"/>; saving a name again replaces that checkpoint.</param>
    /// <param name="iteration">The training iteration recorded in the manifest; null when the state has no integer "iteration".</param>
    /// <param name="data">The whole state tree: "model", each checkpointable's state dict, then the caller's extra entries.
    /// Its tensors are in host memory: a checkpointer copies device tensors into its snapshot arena first.</param>
    /// <param name="options">Shard count, progress and tensor layouts for the write; whether the save is incremental is the backend's own setting.</param>
    /// <param name="cancellationToken">Cancels the save; a checkpoint whose save did not complete is never tagged.</param>
    /// <param name="stallSeconds">How long training waited for this save before the write began (an async save's snapshot), for the run's history.</param>
    Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null);

    /// <summary>A checkpoint this backend resolved was loaded (for the run's history); nothing to do for a local folder.</summary>
    Task RecordLoadAsync(string checkpointKey, double seconds, long bytes, CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// The name of the tagged checkpoint, the one a resume loads (the last saved, unless tagged since), or null when nothing
    /// is tagged. A save tags its checkpoint only once it is complete.
    /// </summary>
    Task<string?> GetLastAsync(CancellationToken cancellationToken);

    /// <summary>Points the tag at checkpoint <paramref name="name"/> (fvcore's <c>tag_last_checkpoint</c>), replacing it atomically.</summary>
    Task TagLastAsync(string name, CancellationToken cancellationToken);

    /// <summary>Committed checkpoints, oldest first.</summary>
    Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken);

    /// <summary>Whether saves reuse the stored bytes of tensors that did not change (incremental checkpoints).</summary>
    bool Incremental { get; }

    /// <summary>True when the backend applies max_to_keep itself (the run grain does), so the periodic checkpointer must not delete.</summary>
    bool AppliesRetention { get; }

    /// <summary>Deletes a checkpoint for retention; false when it did not exist or is tagged.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken);

    /// <summary>The store and key of a path this backend handed out, or null for paths it does not own.</summary>
    Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken);
}
