using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// fvcore's <c>Checkpointer</c> over TorchSharp: saves the model and every checkpointable
/// (optimizer, scheduler, user objects) into a native checkpoint under <see cref="SaveDir"/>, tags
/// it in <c>last_checkpoint</c> once it is complete, and loads it back with fvcore's model rules.
/// </summary>
public partial class Checkpointer
{
    /// <summary>The key the model's state dict is saved under in every checkpoint, as in fvcore: "model".</summary>
    public const string ModelKey = "model";

    private readonly OrderedDictionary<string, ICheckpointable> _checkpointables = new(StringComparer.Ordinal);
    private readonly ICheckpointBackend? _backend;

    /// <summary>
    /// A checkpointer over a local save folder (a <see cref="LocalBackend"/>), as fvcore's
    /// <c>Checkpointer(model, save_dir, save_to_disk=..., **checkpointables)</c>. A rank that saves creates the folder now; one
    /// that does not uses it only if it already exists.
    /// </summary>
    /// <param name="model">The model; its state dict is saved under "model".</param>
    /// <param name="saveDir">Folder for checkpoints; "" means this checkpointer only loads.</param>
    /// <param name="saveToDisk">False on ranks that must not write (fvcore: non-main processes).</param>
    /// <param name="checkpointables">Other objects with state: TorchSharp modules, optimizers, LR schedulers, or <see cref="ICheckpointable"/>.</param>
    /// <param name="logger">Receives what saves and loads do and what did not load cleanly; null logs nothing.</param>
    /// <param name="options">How the save folder is written: format, incremental saves, leftover collection.</param>
    /// <exception cref="ArgumentException">a checkpointable key is used twice or is "model", a checkpointable has no state, or
    /// <paramref name="options"/> asks for incremental saves in a format other than native</exception>
    public Checkpointer(nn.Module model, string saveDir = "", bool saveToDisk = true,
        IEnumerable<KeyValuePair<string, object>>? checkpointables = null, ILogger? logger = null, LocalBackendOptions? options = null)
    {
        Model = model;
        SaveDir = saveDir.Length == 0 ? "" : Path.GetFullPath(saveDir);
        SaveToDisk = saveToDisk;
        Logger = logger ?? NullLogger.Instance;
        if (SaveDir.Length > 0 && (saveToDisk || Directory.Exists(SaveDir))) _backend = new LocalBackend(SaveDir, options, Logger);
        foreach (var (key, value) in checkpointables ?? []) AddCheckpointable(key, value);
    }

    /// <summary>A checkpointer over another backend, e.g. a run grain and blob store (cluster mode).</summary>
    public Checkpointer(nn.Module model, ICheckpointBackend backend, IEnumerable<KeyValuePair<string, object>>? checkpointables = null, ILogger? logger = null)
    {
        Model = model;
        SaveDir = "";
        SaveToDisk = true;
        Logger = logger ?? NullLogger.Instance;
        _backend = backend;
        foreach (var (key, value) in checkpointables ?? []) AddCheckpointable(key, value);
    }

    /// <summary>The model, saved under <see cref="ModelKey"/> and loaded with fvcore's model rules.</summary>
    public nn.Module Model { get; }

    /// <summary>The save folder as a full path; "" when there is none (a load-only checkpointer, or one over another backend).</summary>
    public string SaveDir { get; }

    /// <summary>False on ranks that must not write (fvcore's <c>save_to_disk</c>): their saves return without writing.</summary>
    public bool SaveToDisk { get; }

    /// <summary>The logger given to the constructor, or one that discards everything.</summary>
    public ILogger Logger { get; }

    /// <summary>The objects saved besides the model, by key, in the order they were added; each adapted to <see cref="ICheckpointable"/>.</summary>
    public IReadOnlyDictionary<string, ICheckpointable> Checkpointables => _checkpointables;

    /// <summary>Shard count and progress reporting for saves.</summary>
    public NativeWriteOptions WriteOptions { get; init; } = new();

    /// <summary>
    /// The part of each model parameter and buffer this rank holds, by state-dict name ("fc.weight"); null or a null answer:
    /// the whole tensor (docs/format.md#sharded-tensors-and-resharding). The optimizer's per-parameter state follows its parameter. Saves write only these
    /// slices (in cluster mode every rank saves its own; into a local folder the layouts must cover every tensor, so they are
    /// for loads); loads read only the bytes of these slices, from a checkpoint saved in any layout or whole.
    /// </summary>
    public Func<string, TensorLayout?>? ModelLayouts { get; init; }

    private StateLayouts? _layouts;

    /// <summary>Built on first use, again after a checkpointable is added.</summary>
    private StateLayouts? Layouts => ModelLayouts is null ? null : _layouts ??= new StateLayouts(Model, ModelLayouts, _checkpointables);

    /// <summary>Receives what each load needed and read (tensor bytes), e.g. to see that a resharded load read only its slices.</summary>
    public LoadStatistics? LoadStatistics { get; init; }

    /// <summary>Progress of loads, in bytes of tensor data read.</summary>
    public IProgress<long>? LoadProgress { get; init; }

    /// <summary>
    /// When true, <see cref="SaveAsync"/> returns as soon as every tensor is copied to host memory and
    /// the write continues in the background. The copy goes into a snapshot arena that is allocated on
    /// the first save and reused by every later one (<see cref="SnapshotArenaBytes"/>: one host copy of
    /// the saved tensors, pinned for CUDA tensors), so the training stall is a memory copy. The next
    /// save (or <see cref="WaitForPendingSaveAsync"/>) waits for the previous write first, or skips
    /// (<see cref="WhenSaveBusy"/>); a failed background save is logged, never tagged, and rethrown there.
    /// </summary>
    public bool AsyncSave { get; init; }

    /// <summary>What an <see cref="AsyncSave"/> does while the previous background write is still running.</summary>
    public BusySavePolicy WhenSaveBusy { get; init; } = BusySavePolicy.Wait;

    /// <summary>Host memory the async-save arena holds (0 before the first async save).</summary>
    public long SnapshotArenaBytes => _arena.Bytes;

    private readonly SnapshotArena _arena = new();
    private Task? _pendingSave;

    /// <summary>
    /// Where checkpoints are saved, listed and tagged: the <see cref="LocalBackend"/> of <see cref="SaveDir"/>, or the backend
    /// given to the constructor. Null without a save folder, or when a rank that does not save finds no folder: saves then
    /// write nothing and <see cref="HasCheckpoint"/> is false.
    /// </summary>
    public ICheckpointBackend? Backend => _backend;

    /// <summary>Resolves paths with a scheme (<c>https://</c>, custom prefixes) to local files before loading (fvcore's <c>path_manager</c>).</summary>
    public PathManager PathManager { get; init; } = PathManager.CreateDefault();

    /// <summary>Raised with the checkpoint's name after it is complete and tagged.</summary>
    public event Action<string>? Saved;

    /// <summary>
    /// Adds an object whose state is saved under <paramref name="key"/> and loaded back from it (fvcore's
    /// <c>add_checkpointable</c>).
    /// </summary>
    /// <param name="key">The checkpoint entry for its state; not "model", and not a key already added.</param>
    /// <param name="checkpointable">A TorchSharp module, optimizer or LR scheduler, or an <see cref="ICheckpointable"/>.</param>
    /// <exception cref="ArgumentException">the key is empty, "model" or already used, or the object is null or none of those kinds</exception>
    public void AddCheckpointable(string key, object checkpointable)
    {
        ArgumentException.ThrowIfNullOrEmpty(key);
        if (key == ModelKey || _checkpointables.ContainsKey(key)) throw new ArgumentException($"Key {key} already used in the Checkpointer", nameof(key));
        _checkpointables.Add(key, CheckpointableAdapters.Adapt(key, checkpointable, Logger));
        _layouts = null;
    }

    /// <summary>
    /// Writes checkpoint <paramref name="name"/> and tags it last once it is complete (fvcore's <c>save(name, **kwargs)</c>);
    /// blocks until then, or, with <see cref="AsyncSave"/>, until the tensors are copied. See <see cref="SaveAsync"/>.
    /// </summary>
    /// <param name="name">The checkpoint's name, e.g. "model_0004999", without <c>.pth</c> (the format decides the extension); a
    /// valid <see cref="CheckpointName"/>: letters, digits and <c>_ - . + = @</c>.</param>
    /// <param name="extra">Entries saved beside the state, fvcore's <c>**kwargs</c>; an integer "iteration" is also recorded as
    /// the checkpoint's iteration. A key that is "model" or a checkpointable's is refused.</param>
    /// <exception cref="ArgumentException">the name is not a valid checkpoint name, or an extra key would overwrite saved state</exception>
    /// <remarks>Does nothing (after checking the name) when <see cref="SaveToDisk"/> is false or there is no <see cref="Backend"/>.</remarks>
    public void Save(string name, IReadOnlyDictionary<string, object?>? extra = null) => SaveAsync(name, extra).GetAwaiter().GetResult();

    /// <summary>Writes checkpoint <paramref name="name"/> (model, checkpointables, then <paramref name="extra"/>) and tags it last once complete.</summary>
    public async Task SaveAsync(string name, IReadOnlyDictionary<string, object?>? extra = null, CancellationToken cancellationToken = default)
    {
        CheckpointName.Validate(name);
        if (_backend is null || !SaveToDisk) return;
        var backend = _backend;
        await CheckpointTracing.InSpanAsync(CheckpointTracing.Save, name, activity => SaveTracedAsync(backend, name, extra, activity, cancellationToken)).ConfigureAwait(false);
    }

    private async Task SaveTracedAsync(ICheckpointBackend backend, string name, IReadOnlyDictionary<string, object?>? extra, System.Diagnostics.Activity? activity,
        CancellationToken cancellationToken)
    {
        var data = new OrderedDictionary<string, object?>(StringComparer.Ordinal) { [ModelKey] = ModuleCheckpointable.StateOf(Model) };
        foreach (var (key, checkpointable) in _checkpointables) data[key] = checkpointable.StateDict();
        foreach (var (key, value) in extra ?? new Dictionary<string, object?>())
        {
            if (data.ContainsKey(key)) throw new ArgumentException($"Extra data key '{key}' would overwrite the saved {key} state.", nameof(extra));
            data[key] = value;
        }
        var options = Layouts is { } layouts ? WriteOptions with { Layouts = layouts.ForSave(data) } : WriteOptions;
        var iteration = data.TryGetValue("iteration", out var it) && it is int or long ? Convert.ToInt64(it, System.Globalization.CultureInfo.InvariantCulture) : (long?)null;
        Logger.LogInformation("Saving checkpoint to {Path}", backend.PathOf(name));
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var bytes = AgentMetrics.TensorBytes(data);
        activity?.SetTag(CheckpointTracing.BytesTag, bytes);
        if (!AsyncSave)
        {
            // Device tensors go through the pinned arena (one DMA each) rather than a fresh pageable copy per tensor.
            var hostData = SnapshotArena.HoldsDeviceTensors(data) ? _arena.Copy(data) : data;
            await backend.SaveAsync(name, iteration, hostData, options, cancellationToken).ConfigureAwait(false);
            var seconds = AgentMetrics.SecondsSince(started);
            AgentMetrics.SaveDuration.Record(seconds, AgentMetrics.Mode(async: false));
            AgentMetrics.SaveStall.Record(seconds, AgentMetrics.Mode(async: false));
            AgentMetrics.SavedBytes.Add(bytes, AgentMetrics.Mode(async: false));
            Saved?.Invoke(name);
            return;
        }
        if (IsSavePending && WhenSaveBusy == BusySavePolicy.Skip)
        {
            Logger.LogWarning("Skipping checkpoint {Name}: the previous background save is still writing", name);
            return;
        }
        await WaitForPendingSaveAsync(cancellationToken).ConfigureAwait(false);
        var snapshot = _arena.Copy(data);
        var stall = AgentMetrics.SecondsSince(started);
        AgentMetrics.SaveStall.Record(stall, AgentMetrics.Mode(async: true));
        _pendingSave = Task.Run(async () =>
        {
            try
            {
                var writing = System.Diagnostics.Stopwatch.GetTimestamp();
                await backend.SaveAsync(name, iteration, snapshot, options, CancellationToken.None, stall).ConfigureAwait(false);
                AgentMetrics.SaveDuration.Record(AgentMetrics.SecondsSince(writing), AgentMetrics.Mode(async: true));
                AgentMetrics.SavedBytes.Add(bytes, AgentMetrics.Mode(async: true));
                Saved?.Invoke(name);
            }
            catch (Exception e)
            {
                Logger.LogError(e, "Background save of checkpoint {Name} failed; it was not tagged", name);
                throw;
            }
        }, CancellationToken.None);
    }

    /// <summary>True while an <see cref="AsyncSave"/> write is still running.</summary>
    public bool IsSavePending => _pendingSave is { IsCompleted: false };

    /// <summary>Waits for the background save, if any; throws <see cref="CheckpointSaveFailedException"/> when it failed.</summary>
    public async Task WaitForPendingSaveAsync(CancellationToken cancellationToken = default)
    {
        var pending = _pendingSave;
        if (pending is null) return;
        try
        {
            await pending.WaitAsync(cancellationToken).ConfigureAwait(false);
            _pendingSave = null;
        }
        catch (Exception e) when (e is not OperationCanceledException || pending.IsCompleted)
        {
            _pendingSave = null;
            throw new CheckpointSaveFailedException($"The background save failed and was not tagged: {e.Message}", e);
        }
    }

    /// <summary>
    /// Whether the backend has a tagged checkpoint to resume from (fvcore's <c>has_checkpoint</c>: the save folder has a
    /// <c>last_checkpoint</c> file). False when there is no <see cref="Backend"/>.
    /// </summary>
    /// <exception cref="CheckpointFormatException">a local tag file exists but is empty, unreadable or names a missing checkpoint:
    /// starting from scratch would overwrite the checkpoints it was meant to point at</exception>
    public bool HasCheckpoint() => HasCheckpointAsync().GetAwaiter().GetResult();

    /// <summary>Whether the backend has a tagged checkpoint to resume from; see <see cref="HasCheckpoint"/>.</summary>
    /// <exception cref="CheckpointFormatException">a local tag file is damaged or names a missing checkpoint</exception>
    public async Task<bool> HasCheckpointAsync(CancellationToken cancellationToken = default) =>
        _backend is not null && await _backend.GetLastAsync(cancellationToken).ConfigureAwait(false) is not null;

    /// <summary>The full path of the tagged checkpoint, or "" when there is none.</summary>
    public string GetCheckpointFile() => GetCheckpointFileAsync().GetAwaiter().GetResult();

    /// <summary>
    /// The full path of the tagged checkpoint (fvcore's <c>get_checkpoint_file</c>): a folder or <c>.pth</c> file in the save
    /// folder, or <c>ckpt://tenant/run/NAME</c> in cluster mode; "" when there is none.
    /// </summary>
    public async Task<string> GetCheckpointFileAsync(CancellationToken cancellationToken = default)
    {
        var last = _backend is null ? null : await _backend.GetLastAsync(cancellationToken).ConfigureAwait(false);
        return last is null ? "" : _backend!.PathOf(last);
    }

    /// <summary>Full paths of every committed checkpoint in the save folder.</summary>
    public IReadOnlyList<string> GetAllCheckpointFiles() =>
        _backend is null ? [] : _backend.ListAsync(CancellationToken.None).GetAwaiter().GetResult().Select(_backend.PathOf).ToList();

    /// <summary>
    /// fvcore's <c>resume_or_load</c>: with <paramref name="resume"/> and a tagged checkpoint, loads that checkpoint into the
    /// model and every checkpointable; otherwise loads only the model from <paramref name="path"/>. See <see cref="ResumeOrLoadAsync"/>.
    /// </summary>
    /// <param name="path">What to load when not resuming, as <see cref="Load"/> takes it; "" starts from scratch.</param>
    /// <param name="resume">Whether to prefer the tagged checkpoint of the <see cref="Backend"/> over <paramref name="path"/>.</param>
    /// <returns>The loaded checkpoint's remaining entries, e.g. "iteration": training continues at iteration + 1.</returns>
    public OrderedDictionary<string, object?> ResumeOrLoad(string path, bool resume = true) => ResumeOrLoadAsync(path, resume).GetAwaiter().GetResult();

    /// <summary>
    /// With <paramref name="resume"/> and a tagged checkpoint: loads it with every checkpointable.
    /// Otherwise loads only the model from <paramref name="path"/> ("" starts from scratch).
    /// </summary>
    public async Task<OrderedDictionary<string, object?>> ResumeOrLoadAsync(string path, bool resume = true, CancellationToken cancellationToken = default)
    {
        return await CheckpointTracing.InSpanAsync(CheckpointTracing.Resume, path, async activity =>
        {
            if (resume && await HasCheckpointAsync(cancellationToken).ConfigureAwait(false))
            {
                var last = await GetCheckpointFileAsync(cancellationToken).ConfigureAwait(false);
                activity?.SetTag(CheckpointTracing.NameTag, last);
                return await LoadAsync(last, null, cancellationToken).ConfigureAwait(false);
            }
            return await LoadAsync(path, [], cancellationToken).ConfigureAwait(false);
        }).ConfigureAwait(false);
    }

    /// <summary>
    /// Points the last-checkpoint tag at <paramref name="lastFilenameBasename"/> (fvcore's <c>tag_last_checkpoint</c>), so that
    /// <see cref="ResumeOrLoad"/> resumes from it. Saves tag on their own; this is for choosing another checkpoint. Does
    /// nothing when there is no <see cref="Backend"/>.
    /// </summary>
    /// <param name="lastFilenameBasename">The name of a checkpoint of the backend, as <see cref="Save"/> took it.</param>
    /// <exception cref="ArgumentException">the name is not a valid checkpoint name</exception>
    public void TagLastCheckpoint(string lastFilenameBasename) => TagLastCheckpointAsync(lastFilenameBasename).GetAwaiter().GetResult();

    /// <summary>Points the last-checkpoint tag at <paramref name="lastFilenameBasename"/>; see <see cref="TagLastCheckpoint"/>.</summary>
    /// <param name="lastFilenameBasename">The name of a checkpoint of the backend, as <see cref="SaveAsync"/> took it.</param>
    /// <param name="cancellationToken">Cancels the tag write.</param>
    /// <exception cref="ArgumentException">the name is not a valid checkpoint name</exception>
    public Task TagLastCheckpointAsync(string lastFilenameBasename, CancellationToken cancellationToken = default) =>
        _backend is null ? Task.CompletedTask : _backend.TagLastAsync(CheckpointName.Validate(lastFilenameBasename), cancellationToken);
}
