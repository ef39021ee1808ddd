using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

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
/// <remarks>
/// Every save holds a shared <c>flock</c> on the save folder while it writes. A save that can take the
/// exclusive lock first knows no other save is in flight there, and collects what killed saves left:
/// hidden temporary files, shards no manifest references, and the folders they leave empty.
/// </remarks>
public sealed class LocalBackend : ICheckpointBackend
{
    private readonly FileSystemStore _store;
    private readonly LocalCatalog _catalog;
    private readonly ILogger _logger;

    /// <summary>How old leftovers of killed saves must be before a save deletes them, unless told otherwise.</summary>
    public static readonly TimeSpan DefaultLeftoverMinimumAge = TimeSpan.FromMinutes(10);

    /// <param name="leftoverMinimumAge">Temporary files and unreferenced shards younger than this are kept even under the folder lock:
    /// writers that take no lock (<c>ckpt convert</c> into the folder, other hosts where locks are host-local) may still be writing them.
    /// Default <see cref="DefaultLeftoverMinimumAge"/>.</param>
    public LocalBackend(string saveDir, CheckpointFormat format = CheckpointFormat.Native, ILogger? logger = null, TimeSpan? leftoverMinimumAge = null)
    {
        LeftoverMinimumAge = leftoverMinimumAge ?? DefaultLeftoverMinimumAge;
        _store = new FileSystemStore(saveDir);
        _catalog = new LocalCatalog(_store);
        _logger = logger ?? NullLogger.Instance;
        SaveDir = _store.Root;
        Format = format;
    }

    public string SaveDir { get; }
    public CheckpointFormat Format { get; }
    public TimeSpan LeftoverMinimumAge { get; }
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
        using var folderLock = DirectoryHandle.Open(SaveDir);
        if (folderLock.TryLockExclusive()) await TryCollectLeftoversAsync(cancellationToken).ConfigureAwait(false);
        _ = folderLock.LockShared(); // without locks nobody can collect, so writing unlocked is safe
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

    /// <remarks>Under the shared folder lock, so that a collecting save never deletes the tag's temporary file.</remarks>
    public async Task TagLastAsync(string name, CancellationToken cancellationToken)
    {
        using var folderLock = DirectoryHandle.Open(SaveDir);
        _ = folderLock.LockShared();
        await _catalog.TagLastAsync(Format == CheckpointFormat.Pth ? WithoutPthExtension(name) + TorchFiles.Extension : name, cancellationToken).ConfigureAwait(false);
    }

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

    /// <remarks>A checkpoint folder or file that is a symbolic link is not deleted (nor is anything it points at): logged, false.</remarks>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        if (await GetLastAsync(cancellationToken).ConfigureAwait(false) == name) return false;
        try
        {
            var deletedFile = await _catalog.Store.DeleteAsync(CheckpointName.Validate(name) + TorchFiles.Extension, cancellationToken).ConfigureAwait(false);
            return await _catalog.DeleteAsync(name, cancellationToken).ConfigureAwait(false) > 0 || deletedFile;
        }
        catch (SymbolicLinkRefusedException e)
        {
            _logger.LogWarning("Not deleting checkpoint {Name}: {Reason}", name, e.Message);
            return false;
        }
    }

    /// <summary>
    /// Deletes what killed saves left: temporary files in the save folder and in checkpoint folders,
    /// shards no manifest references, and checkpoint folders that this leaves empty. Folders holding
    /// anything not ours, and symbolic links, are skipped. Call only under the exclusive folder lock.
    /// Best effort: a folder it cannot read or clean (a link, no permission, removed meanwhile) never fails the save.
    /// </summary>
    private async Task TryCollectLeftoversAsync(CancellationToken cancellationToken)
    {
        try
        {
            await CollectLeftoversAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Could not collect leftovers of interrupted saves in {Folder}: {Reason}", SaveDir, e.Message);
        }
    }

    private async Task CollectLeftoversAsync(CancellationToken cancellationToken)
    {
        var collected = _store.DeleteTemporaryFiles("", _ => true, LeftoverMinimumAge).Count;
        var noLinksNoHidden = new EnumerationOptions { AttributesToSkip = FileAttributes.ReparsePoint | FileAttributes.Hidden };
        foreach (var folder in Directory.EnumerateDirectories(SaveDir, "*", noLinksNoHidden))
        {
            var name = Path.GetFileName(folder);
            if (!CheckpointName.IsValid(name) || (await CheckpointFiles.ForeignKeysAsync(_store, name, cancellationToken).ConfigureAwait(false)).Count > 0) continue;
            var here = _store.DeleteTemporaryFiles(name, CheckpointFiles.IsOurs, LeftoverMinimumAge).Count
                + await CheckpointFiles.DeleteOrphanShardsAsync(_store, name, LeftoverMinimumAge, ct: cancellationToken).ConfigureAwait(false);
            if (here > 0) _store.DeleteFolderIfEmpty(name);
            collected += here;
        }
        if (collected > 0) _logger.LogInformation("Collected {Count} leftover file(s) of interrupted saves in {Folder}", collected, SaveDir);
    }

    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult<(ICheckpointStore, string)?>(null); // local paths are opened as folders or files by the checkpointer

    private static string WithoutPthExtension(string name) =>
        name.EndsWith(TorchFiles.Extension, StringComparison.Ordinal) ? name[..^TorchFiles.Extension.Length] : name;
}
