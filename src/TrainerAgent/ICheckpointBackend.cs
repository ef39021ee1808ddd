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

/// <summary>How a local save folder stores each checkpoint.</summary>
public enum CheckpointFormat
{
    /// <summary>A folder of safetensors shards and a manifest (checksummed, shardable).</summary>
    Native,

    /// <summary>One <c>NAME.pth</c> file that <c>torch.load</c> reads, as fvcore and detectron2 write it.</summary>
    Pth,
}

/// <summary>
/// A local save folder and its fvcore-compatible last_checkpoint file. Checkpoints are saved in
/// <see cref="Format"/>; both layouts are listed and loaded: a native sub-folder <c>NAME/</c> or a
/// file <c>NAME.pth</c> (the tag then holds the file name, as detectron2 writes it). Names in this
/// API never carry the <c>.pth</c> extension.
/// </summary>
public sealed class LocalBackend(string saveDir, CheckpointFormat format = CheckpointFormat.Native) : ICheckpointBackend
{
    private readonly LocalCatalog _catalog = new(new Storage.FileSystemStore(saveDir));

    public string SaveDir { get; } = Path.GetFullPath(saveDir);
    public CheckpointFormat Format { get; } = format;
    public LocalCatalog Catalog => _catalog;
    public bool AppliesRetention => false;

    /// <summary>The folder of a native checkpoint, or the <c>.pth</c> file when that is what exists (or what this backend writes).</summary>
    public string PathOf(string name)
    {
        var folder = Path.Combine(SaveDir, name);
        var file = folder + TorchFiles.Extension;
        if (Format == CheckpointFormat.Pth) return file;
        return !File.Exists(Path.Combine(folder, ManifestJson.FileName)) && File.Exists(file) ? file : folder;
    }

    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken)
    {
        if (Format == CheckpointFormat.Pth)
        {
            await _catalog.Store.WriteAsync(CheckpointName.Validate(name) + TorchFiles.Extension, (stream, _) =>
            {
                TorchFiles.Write(stream, data, name);
                return Task.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await NativeCheckpointWriter.WriteAsync(_catalog.Store, name, new CheckpointIdentity("local", name, iteration), data, TorchTensors.AsSource, options, cancellationToken).ConfigureAwait(false);
        }
        await TagLastAsync(name, cancellationToken).ConfigureAwait(false);
    }

    public async Task<string?> GetLastAsync(CancellationToken cancellationToken) =>
        await _catalog.GetLastAsync(cancellationToken).ConfigureAwait(false) is { } tag ? WithoutPthExtension(tag) : null;

    public Task TagLastAsync(string name, CancellationToken cancellationToken) =>
        _catalog.TagLastAsync(Format == CheckpointFormat.Pth ? WithoutPthExtension(name) + TorchFiles.Extension : name, cancellationToken);

    /// <summary>Native checkpoints and <c>.pth</c> files, by name in ordinal order.</summary>
    public async Task<IReadOnlyList<string>> ListAsync(CancellationToken cancellationToken)
    {
        // One pass over the folder finds both layouts.
        var names = new SortedSet<string>(StringComparer.Ordinal);
        await foreach (var entry in _catalog.Store.ListAsync("", cancellationToken).ConfigureAwait(false))
        {
            if (LocalCatalog.CommittedName(entry.Key) is { } native) names.Add(native);
            else if (!entry.Key.Contains('/', StringComparison.Ordinal) && entry.Key.EndsWith(TorchFiles.Extension, StringComparison.Ordinal)) names.Add(WithoutPthExtension(entry.Key));
        }
        return names.ToList();
    }

    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        if (await GetLastAsync(cancellationToken).ConfigureAwait(false) == name) return false;
        var deletedFile = await _catalog.Store.DeleteAsync(CheckpointName.Validate(name) + TorchFiles.Extension, cancellationToken).ConfigureAwait(false);
        return await _catalog.DeleteAsync(name, cancellationToken).ConfigureAwait(false) > 0 || deletedFile;
    }

    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult<(ICheckpointStore, string)?>(null); // local paths are opened as folders or files by the checkpointer

    private static string WithoutPthExtension(string name) =>
        name.EndsWith(TorchFiles.Extension, StringComparison.Ordinal) ? name[..^TorchFiles.Extension.Length] : name;
}
