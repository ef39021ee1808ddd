using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Checkpointing.Core;

/// <summary>
/// A local save folder and its fvcore-compatible last_checkpoint file. Checkpoints are saved in
/// <see cref="Format"/>; both layouts are listed and loaded: a native sub-folder <c>NAME/</c> or a
/// file <c>NAME.pth</c> (the tag then holds the file name, as detectron2 writes it). Names in this
/// API never carry the <c>.pth</c> extension.
/// </summary>
/// <remarks>
/// A save folder has one writing process at a time (<see cref="SaveFolderWriter"/>): every write (save, tag, delete,
/// compact) holds the folder's exclusive <c>flock</c>, and another process writing meanwhile gets
/// <see cref="SaveFolderBusyException"/> before it writes anything. A save that begins with no other write in flight
/// collects what killed saves left: hidden temporary files, shards no manifest references, and the folders they leave empty.
/// </remarks>
public sealed class LocalBackend : ICheckpointBackend
{
    private readonly FileSystemStore _store;
    private readonly LocalCatalog _catalog;
    private readonly ILogger _logger;
    private readonly ShardReferences _references = new();

    /// <exception cref="ArgumentException">incremental or compressed saves in a format other than native, or block reuse without incremental saves</exception>
    /// <exception cref="ArgumentOutOfRangeException">a block reuse setting out of its range</exception>
    public LocalBackend(string saveDir, LocalBackendOptions? options = null, ILogger? logger = null)
    {
        Options = options ?? new LocalBackendOptions();
        if (Options.Incremental && Options.Format != CheckpointFormat.Native) throw new ArgumentException("Incremental saves need the native format.", nameof(options));
        if (Options.Compression is not null && Options.Format != CheckpointFormat.Native) throw new ArgumentException("Compressed saves need the native format.", nameof(options));
        if (Options.BlockReuse is not null && !Options.Incremental) throw new ArgumentException("Block reuse is part of incremental saves: set Incremental too.", nameof(options));
        Options.BlockReuse?.Validate();
        _store = new FileSystemStore(saveDir);
        _catalog = new LocalCatalog(_store);
        _logger = logger ?? NullLogger.Instance;
        SaveDir = _store.Root;
    }

    /// <summary>The save folder, as a full path; created by the constructor if it did not exist.</summary>
    public string SaveDir { get; }

    /// <summary>How this backend writes: the options given to the constructor, or the defaults.</summary>
    public LocalBackendOptions Options { get; }

    /// <summary>The format saves write (<see cref="LocalBackendOptions.Format"/>); checkpoints of either format are listed and loaded.</summary>
    public CheckpointFormat Format => Options.Format;

    /// <summary>How old leftovers of killed saves must be before a save deletes them (<see cref="LocalBackendOptions.LeftoverMinimumAge"/>).</summary>
    public TimeSpan LeftoverMinimumAge => Options.LeftoverMinimumAge;

    /// <summary>Whether native saves reuse the bytes of unchanged tensors from earlier checkpoints in the folder (<see cref="LocalBackendOptions.Incremental"/>).</summary>
    public bool Incremental => Options.Incremental;

    /// <summary>
    /// The folder's native checkpoints and its <c>last_checkpoint</c> tag. Reading through it is safe at any time; writes
    /// belong to this backend's methods, which hold the folder's lock.
    /// </summary>
    public LocalCatalog Catalog => _catalog;

    /// <summary>False: a local folder applies no retention itself; <see cref="PeriodicCheckpointer"/> deletes through <see cref="DeleteAsync"/>.</summary>
    public bool AppliesRetention => false;

    /// <summary>The folder of a native checkpoint, or the <c>.pth</c> file when that is what exists (or what this backend writes).</summary>
    public string PathOf(string name)
    {
        var folder = Path.Combine(SaveDir, name);
        var file = folder + TorchFiles.Extension;
        if (Format == CheckpointFormat.Pth) return file;
        return !File.Exists(Path.Combine(folder, ManifestJson.FileName)) && File.Exists(file) ? file : folder;
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Holds the folder's lock: another process writing meanwhile makes it throw <see cref="SaveFolderBusyException"/> before
    /// anything is written. In the <see cref="CheckpointFormat.Pth"/> format it writes <c>NAME.pth</c> and refuses sharded
    /// layouts with <see cref="NotSupportedException"/>. <paramref name="stallSeconds"/> is ignored: a folder keeps no history.
    /// </remarks>
    public async Task SaveAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken, double? stallSeconds = null)
    {
        using var writer = SaveFolderWriter.Acquire(SaveDir);
        if (writer.Alone) await TryCollectLeftoversAsync(cancellationToken).ConfigureAwait(false);
        if (Format == CheckpointFormat.Pth)
        {
            if (options.Layouts is not null) throw new NotSupportedException($"Checkpoint {name}: a .pth file holds whole tensors; save sharded layouts in the native format.");
            await _catalog.Store.WriteAsync(CheckpointName.Validate(name) + TorchFiles.Extension, (stream, _) =>
            {
                TorchFiles.Write(stream, data, name);
                return Task.CompletedTask;
            }, cancellationToken).ConfigureAwait(false);
        }
        else
        {
            await SaveNativeAsync(CheckpointName.Validate(name), iteration, data, options, cancellationToken).ConfigureAwait(false);
        }
        await TagLastAsync(name, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// An incremental save pins every shard of the committed checkpoints it may reuse until its own manifest
    /// references them, so a retention deletion running meanwhile (async saves) cannot take them away.
    /// </summary>
    private async Task SaveNativeAsync(string name, long? iteration, IReadOnlyDictionary<string, object?> data, NativeWriteOptions options, CancellationToken cancellationToken)
    {
        var pinned = Array.Empty<string>();
        options = options with { Compression = Options.Compression, BlockReuse = Options.BlockReuse };
        try
        {
            // A re-save of a name must keep that folder's shards other checkpoints reuse; a new name has none to keep.
            if (Incremental || await FolderHasShardsAsync(name, cancellationToken).ConfigureAwait(false))
            {
                var run = await RunCheckpoints.ReadCommittedAsync(_store, "", cancellationToken).ConfigureAwait(false);
                pinned = _references.Pin(run.ReferencedShardKeys(""));
                options = options with { ReuseFrom = Incremental ? run.Committed : null, ReferencedElsewhere = ReferencedElsewhere(run, name, pinned) };
            }
            await NativeCheckpointWriter.WriteAsync(_store, name, new CheckpointIdentity("local", name, iteration), data, TorchTensors.AsSource, options, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _references.Unpin(pinned);
        }
        await CollectEvictedAsync(cancellationToken).ConfigureAwait(false);
    }

    private async Task<bool> FolderHasShardsAsync(string name, CancellationToken ct) =>
        await CheckpointFiles.ShardFilesAsync(_store, name, ct).AnyAsync(ct).ConfigureAwait(false);

    /// <summary>
    /// Which shard keys in <paramref name="name"/>'s folder other checkpoints still need: referenced by another manifest,
    /// pinned by another save in flight, or any of them while a manifest is unreadable (its references are unknown).
    /// </summary>
    private Func<string, bool> ReferencedElsewhere(RunSnapshot run, string name, string[] ownPins)
    {
        var elsewhere = run.ReferencedShardKeys("", except: name);
        var unknown = run.Unreadable.Count > 0;
        return key => unknown || elsewhere.Contains(key) || _references.IsPinnedByOthers(key, ownPins);
    }

    /// <summary>The name in the <c>last_checkpoint</c> file, without a <c>.pth</c> extension, or null when there is no such file.</summary>
    /// <exception cref="CheckpointFormatException">the tag file is empty, unreadable, not a checkpoint name, or names a
    /// checkpoint that is not in the folder: resuming from scratch would overwrite what it was meant to point at</exception>
    public async Task<string?> GetLastAsync(CancellationToken cancellationToken) =>
        await _catalog.GetLastAsync(cancellationToken).ConfigureAwait(false) is { } tag ? WithoutPthExtension(tag) : null;

    /// <remarks>As a writer of the folder, so that a collecting save never deletes the tag's temporary file.</remarks>
    public async Task TagLastAsync(string name, CancellationToken cancellationToken)
    {
        using var writer = SaveFolderWriter.Acquire(SaveDir);
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

    /// <remarks>
    /// A checkpoint folder or file that is a symbolic link is not deleted (nor is anything it points at): logged, false.
    /// The manifest goes first, so the checkpoint is gone at once; shards that other checkpoints reuse, or that an
    /// incremental save in flight may reuse, stay until nothing references them (see <see cref="CollectEvictedAsync"/>).
    /// </remarks>
    public async Task<bool> DeleteAsync(string name, CancellationToken cancellationToken)
    {
        using var writer = SaveFolderWriter.Acquire(SaveDir);
        if (await GetLastAsync(cancellationToken).ConfigureAwait(false) == name) return false;
        try
        {
            var deletedFile = await _catalog.Store.DeleteAsync(CheckpointName.Validate(name) + TorchFiles.Extension, cancellationToken).ConfigureAwait(false);
            // The folders this checkpoint reuses shards from may hold nothing else that is still referenced.
            foreach (var holder in await ReusedFromAsync(name, cancellationToken).ConfigureAwait(false)) _references.MarkEvicted(holder);
            var deletedManifest = await _store.DeleteAsync(StoreLayout.ManifestKey(name), cancellationToken).ConfigureAwait(false);
            _references.MarkEvicted(name);
            await CollectEvictedAsync(cancellationToken).ConfigureAwait(false);
            return deletedManifest || deletedFile;
        }
        catch (SymbolicLinkRefusedException e)
        {
            _logger.LogWarning("Not deleting checkpoint {Name}: {Reason}", name, e.Message);
            return false;
        }
    }

    /// <summary>
    /// Rewrites an incremental checkpoint as a self-contained one (every tensor in its own folder), after
    /// verifying it; the new manifest replaces the old atomically, so a crash leaves one or the other.
    /// Shards it reused stay where they are for as long as other checkpoints reference them.
    /// </summary>
    /// <returns>Bytes written, or null when the checkpoint already was self-contained.</returns>
    public async Task<long?> CompactAsync(string name, CancellationToken cancellationToken = default) => await CompactAsync(name, decompress: false, cancellationToken).ConfigureAwait(false);

    /// <summary>
    /// Rewrites a checkpoint as a self-contained one, as <see cref="CompactAsync(string, CancellationToken)"/>; with
    /// <paramref name="decompress"/>, also with every tensor stored as it is (docs/compression.md), so that its shards are plain
    /// safetensors files any reader opens. Without it, encoded tensors are encoded again.
    /// </summary>
    /// <returns>Bytes written, or null when there was nothing to do.</returns>
    public async Task<long?> CompactAsync(string name, bool decompress, CancellationToken cancellationToken = default)
    {
        using var writer = SaveFolderWriter.Acquire(SaveDir);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, CheckpointName.Validate(name), cancellationToken).ConfigureAwait(false);
        var holders = manifest.ReusedFrom.ToList();
        var encoded = manifest.Tensors.Values.Any(t => t.Encoding is not null);
        var compressed = manifest.Tensors.Values.Any(t => t.Encoding == BytegroupCodec.Name);
        if (holders.Count == 0 && !(decompress && encoded)) return null;
        await NativeCheckpointReader.VerifyAsync(_store, name, manifest, cancellationToken: cancellationToken).ConfigureAwait(false); // never copy damaged bytes
        var state = await StoredTensor.StateOfAsync(_store, name, manifest, cancellationToken).ConfigureAwait(false);
        var run = await RunCheckpoints.ReadCommittedAsync(_store, "", cancellationToken).ConfigureAwait(false);
        var options = new NativeWriteOptions
        {
            ReuseFrom = [], // hashes recorded, nothing reused: later incremental saves can build on it
            ReferencedElsewhere = ReferencedElsewhere(run, name, ownPins: []),
            Compression = decompress || !compressed ? null : Options.Compression ?? new TensorCompression(),
        };
        var compacted = await NativeCheckpointWriter.WriteAsync(_store, name, new CheckpointIdentity(manifest.Run, name, manifest.Iteration, manifest.WorldSize),
            state, value => value as ITensorSource, options, cancellationToken).ConfigureAwait(false);
        foreach (var holder in holders) _references.MarkEvicted(holder);
        // Another backend's save in this process may be reusing those shards right now (its pins are not ours to see): collect only when none is in flight.
        if (writer.Alone) await CollectEvictedAsync(cancellationToken).ConfigureAwait(false);
        return compacted.WrittenBytes;
    }

    private async Task<IEnumerable<string>> ReusedFromAsync(string name, CancellationToken ct)
    {
        try
        {
            return (await NativeCheckpointReader.ReadManifestAsync(_store, name, ct).ConfigureAwait(false)).ReusedFrom;
        }
        catch (Exception e) when (e is CheckpointNotFoundException or CheckpointFormatException)
        {
            return []; // a .pth checkpoint, or a damaged manifest: the leftover collection finds what it referenced
        }
    }

    /// <summary>
    /// Deletes the shards of checkpoints this backend deleted that no committed manifest references and no save
    /// in flight has pinned; a folder left empty goes too. What a crash leaves undone here the leftover collection
    /// finishes (it consults every manifest's references as well).
    /// </summary>
    private async Task CollectEvictedAsync(CancellationToken cancellationToken)
    {
        var evicted = _references.Evicted();
        if (evicted.Count == 0) return;
        var run = await RunCheckpoints.ReadCommittedAsync(_store, "", cancellationToken).ConfigureAwait(false);
        if (run.Unreadable.Count > 0)
        {
            _logger.LogWarning("Not deleting shards of deleted checkpoints in {Folder}: the manifest of {Checkpoint} is unreadable, so what it references is unknown", SaveDir, run.Unreadable[0]);
            return;
        }
        var referenced = run.ReferencedShardKeys("");
        foreach (var name in evicted)
        {
            if (await _store.GetEntryAsync(StoreLayout.ManifestKey(name), cancellationToken).ConfigureAwait(false) is not null)
            {
                _references.Collected(name); // saved again under the same name: its own manifest accounts for its shards
                continue;
            }
            await CheckpointFiles.DeleteShardsAsync(_store, name, file => !referenced.Contains(StoreLayout.FileKey(name, file)) && !_references.IsPinned(StoreLayout.FileKey(name, file)), cancellationToken).ConfigureAwait(false);
            if (!await FolderHasShardsAsync(name, cancellationToken).ConfigureAwait(false)) _references.Collected(name);
        }
    }

    /// <summary>
    /// Deletes what killed saves left: temporary files in the save folder and in checkpoint folders,
    /// shards no manifest references, and checkpoint folders that this leaves empty. Folders holding
    /// anything not ours, and symbolic links, are skipped. Call only as the folder's <see cref="SaveFolderWriter.Alone"/> writer.
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
        // Shards that incremental checkpoints reuse are kept wherever they are. Every manifest is read for that only once
        // some folder has a shard to collect (not at every save); while one is unreadable, what it references is unknown:
        // then no shard is collected anywhere, only temporary files.
        Task<IReadOnlySet<string>?>? referenced = null;
        Func<Task<IReadOnlySet<string>?>> referencedKeys = () => referenced ??= ReferencedShardKeysAsync(cancellationToken);
        var noLinksNoHidden = new EnumerationOptions { AttributesToSkip = FileAttributes.ReparsePoint | FileAttributes.Hidden };
        foreach (var folder in Directory.EnumerateDirectories(SaveDir, "*", noLinksNoHidden))
        {
            var name = Path.GetFileName(folder);
            if (!CheckpointName.IsValid(name) || (await CheckpointFiles.ForeignKeysAsync(_store, name, cancellationToken).ConfigureAwait(false)).Count > 0) continue;
            var here = _store.DeleteTemporaryFiles(name, StoreLayout.IsOurs, LeftoverMinimumAge).Count
                + await CheckpointFiles.DeleteOrphanShardsAsync(_store, name, LeftoverMinimumAge, referencedKeys: referencedKeys, ct: cancellationToken).ConfigureAwait(false);
            if (here > 0) _store.DeleteFolderIfEmpty(name);
            collected += here;
        }
        if (collected > 0) _logger.LogInformation("Collected {Count} leftover file(s) of interrupted saves in {Folder}", collected, SaveDir);
    }

    /// <summary>The shard keys every committed manifest in the folder references, or null while one is unreadable.</summary>
    private async Task<IReadOnlySet<string>?> ReferencedShardKeysAsync(CancellationToken cancellationToken)
    {
        var run = await RunCheckpoints.ReadCommittedAsync(_store, "", cancellationToken).ConfigureAwait(false);
        return run.Unreadable.Count == 0 ? run.ReferencedShardKeys("") : null;
    }

    /// <summary>Null for every path: the checkpointer opens local checkpoint folders and files itself.</summary>
    public Task<(ICheckpointStore Store, string Key)?> ResolveAsync(string path, CancellationToken cancellationToken) =>
        Task.FromResult<(ICheckpointStore, string)?>(null); // local paths are opened as folders or files by the checkpointer

    private static string WithoutPthExtension(string name) =>
        name.EndsWith(TorchFiles.Extension, StringComparison.Ordinal) ? name[..^TorchFiles.Extension.Length] : name;
}
