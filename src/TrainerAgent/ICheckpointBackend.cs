using Checkpointing.Abstractions;
using Checkpointing.Formats;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// Where a <see cref="Checkpointer"/> keeps its checkpoints and its last-checkpoint tag: a local
/// folder (<see cref="LocalBackend"/>) or a run grain plus blob store (<see cref="Cluster.ClusterBackend"/>).
/// The checkpointer's public API is the same over either.
/// </summary>
public interface ICheckpointBackend
{
    /// <summary>What users see as a checkpoint's "file": a folder path, or ckpt://tenant/run/NAME.</summary>
    string PathOf(string name);

    /// <summary>Writes and commits checkpoint <paramref name="name"/> and tags it last; returns once it is complete.</summary>
    Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken);

    Task<string?> GetLastAsync(CancellationToken cancellationToken);

    Task TagLastAsync(string name, CancellationToken cancellationToken);

    /// <summary>Committed checkpoints, oldest first.</summary>
    Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken);

    /// <summary>True when the backend applies max_to_keep itself (the run grain does), so the periodic checkpointer must not delete.</summary>
    bool AppliesRetention { get; }

    /// <summary>Deletes a checkpoint for retention; false when it did not exist or is tagged.</summary>
    Task<bool> DeleteAsync(string name, CancellationToken cancellationToken);

    /// <summary>The store and key of a path this backend handed out, or null for paths it does not own.</summary>
    Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken);
}

/// <summary>A local save folder: checkpoint sub-folders and the fvcore-compatible last_checkpoint file.</summary>
public sealed class LocalBackend(string saveDir) : ICheckpointBackend
{
    private readonly LocalCatalog _catalog = new(new Storage.FileSystemStore(saveDir));

    public string SaveDir { get; } = Path.GetFullPath(saveDir);
    public LocalCatalog Catalog => _catalog;
    public bool AppliesRetention => false;

    public string PathOf(string name) => Path.Combine(SaveDir, name);

    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken)
    {
        await NativeCheckpointWriter.WriteAsync(_catalog.Store, name, new CheckpointIdentity("local", name, iteration), data, TorchTensors.AsSource, options, cancellationToken).ConfigureAwait(false);
        await _catalog.TagLastAsync(name, cancellationToken).ConfigureAwait(false);
    }

    public Task<string?> GetLastAsync(CancellationToken cancellationToken) => _catalog.GetLastAsync(cancellationToken);

    public Task TagLastAsync(string name, CancellationToken cancellationToken) => _catalog.TagLastAsync(name, cancellationToken);

    public Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken) => _catalog.ListNamesAsync(cancellationToken);

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        if (await _catalog.GetLastAsync(cancellationToken).ConfigureAwait(false) == name) return false;
        return await _catalog.DeleteAsync(name, cancellationToken).ConfigureAwait(false) > 0;
    }

    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult<(ICheckpointStore, string)?>(null); // local paths are opened as folders by the checkpointer
}
