using Checkpointing.Abstractions;
using Checkpointing.Formats;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Core;

// Loading: fvcore's load, _load_file and _load_model; everything is read and verified before the model is touched.
public partial class Checkpointer
{
    /// <summary>
    /// Loads the checkpoint at <paramref name="path"/> into the model and the named checkpointables and returns what was not
    /// consumed (fvcore's <c>load(path, checkpointables=None)</c>). See <see cref="LoadAsync"/>.
    /// </summary>
    /// <param name="path">A native checkpoint folder (or its manifest.json), a <c>.pth</c> or <c>.safetensors</c> file, a path
    /// the <see cref="PathManager"/> resolves (<c>https://</c>), or one the <see cref="Backend"/> owns; "" loads nothing.</param>
    /// <param name="checkpointables">Keys of the checkpointables to load; null loads every one, an empty list only the model.</param>
    /// <returns>The checkpoint's remaining entries, e.g. "iteration"; empty when <paramref name="path"/> is "".</returns>
    /// <exception cref="ArgumentException">a key in <paramref name="checkpointables"/> names no checkpointable</exception>
    public OrderedDictionary<string, object?> Load(string path, IReadOnlyCollection<string>? checkpointables = null) =>
        LoadAsync(path, checkpointables).GetAwaiter().GetResult();

    /// <summary>
    /// Loads the checkpoint at <paramref name="path"/> into the model and the named checkpointables
    /// (all when null) and returns what was not consumed, e.g. "iteration". Nothing is changed
    /// unless the whole checkpoint reads back with valid checksums.
    /// </summary>
    public virtual async Task<OrderedDictionary<string, object?>> LoadAsync(string path, IReadOnlyCollection<string>? checkpointables = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(path))
        {
            Logger.LogInformation("No checkpoint found. Initializing model from scratch");
            return new OrderedDictionary<string, object?>();
        }
        Logger.LogInformation("[Checkpointer] Loading from {Path} ...", path);
        return await CheckpointTracing.InSpanAsync(CheckpointTracing.Load, path, _ => LoadAndAdoptAsync(path, checkpointables, cancellationToken)).ConfigureAwait(false);
    }

    private async Task<OrderedDictionary<string, object?>> LoadAndAdoptAsync(string path, IReadOnlyCollection<string>? checkpointables, CancellationToken cancellationToken)
    {
        path = await PathManager.GetLocalPathAsync(path, cancellationToken).ConfigureAwait(false);
        var checkpoint = await LoadFileAsync(path, cancellationToken).ConfigureAwait(false);
        var incompatible = LoadModel(checkpoint);
        if (incompatible is not null) ModelStateLoader.Log(Logger, Model, incompatible);

        foreach (var key in checkpointables ?? _checkpointables.Keys)
        {
            if (!_checkpointables.TryGetValue(key, out var target)) throw new ArgumentException($"No checkpointable named '{key}' (have: {string.Join(", ", _checkpointables.Keys)}).", nameof(checkpointables));
            if (!checkpoint.Remove(key, out var state)) continue;
            Logger.LogInformation("Loading {Key} from {Path} ...", key, path);
            target.LoadStateDict(state as IReadOnlyDictionary<string, object?> ?? throw new InvalidDataException($"Checkpoint entry '{key}' is a {state?.GetType().Name ?? "null"}, not a state dict."));
        }
        return checkpoint;
    }

    /// <summary>
    /// Reads a checkpoint into a state tree of TorchSharp tensors (fvcore's <c>_load_file</c>): a native
    /// folder (or its manifest.json), a <c>torch.save</c> file, or a bare <c>.safetensors</c> file.
    /// </summary>
    /// <remarks>Every read happens here, into fresh tensors, before anything is copied into the model or a checkpointable:
    /// a read that fails leaves them as they were.</remarks>
    protected virtual async Task<OrderedDictionary<string, object?>> LoadFileAsync(string path, CancellationToken cancellationToken)
    {
        if (_backend is not null && await _backend.ResolveAsync(path, cancellationToken).ConfigureAwait(false) is var (store, key))
        {
            return await LoadNativeAsync(store, key, cancellationToken, recordIn: _backend).ConfigureAwait(false);
        }
        if (File.Exists(path) && Path.GetFileName(path) != ManifestJson.FileName)
        {
            if (Path.GetExtension(path).Equals(".pkl", StringComparison.OrdinalIgnoreCase))
                throw new NotSupportedException($"{path}: .pkl files (Caffe2 / Detectron model zoo) are read by DetectionCheckpointer.");
            if (SafetensorsFile.HasExtension(path)) return SafetensorsFile.ReadCheckpoint(path, TorchTensors.Allocate, ModelKey);
            return TorchFiles.Load(path);
        }
        var (folder, folderKey) = NativeCheckpointFiles.Locate(path);
        return await LoadNativeAsync(folder, folderKey, cancellationToken).ConfigureAwait(false);
    }

    /// <param name="store">The store that holds the checkpoint.</param>
    /// <param name="key">The checkpoint's folder key in <paramref name="store"/>.</param>
    /// <param name="cancellationToken">Cancels the read; nothing has been adopted by the model then.</param>
    /// <param name="recordIn">The backend that resolved the checkpoint, told of the load for its run's history.</param>
    private async Task<OrderedDictionary<string, object?>> LoadNativeAsync(ICheckpointStore store, string key, CancellationToken cancellationToken,
        ICheckpointBackend? recordIn = null)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, key, cancellationToken).ConfigureAwait(false);
        var options = new NativeLoadOptions
        {
            Progress = LoadProgress,
            Layouts = Layouts is { } layouts ? layouts.ForLoad : null,
            Statistics = LoadStatistics,
        };
        var state = await NativeCheckpointReader.LoadAsync(store, key, manifest, TorchTensors.Allocate, options, cancellationToken).ConfigureAwait(false);
        var seconds = AgentMetrics.SecondsSince(started);
        AgentMetrics.LoadDuration.Record(seconds);
        AgentMetrics.LoadedBytes.Add(manifest.TensorBytes);
        if (recordIn is not null) await RecordLoadAsync(recordIn, key, seconds, manifest.TensorBytes, cancellationToken).ConfigureAwait(false);
        return state;
    }

    /// <summary>The run's history is best effort: a load that worked is not failed by a grain that cannot be told.</summary>
    private async Task RecordLoadAsync(ICheckpointBackend backend, string key, double seconds, long bytes, CancellationToken cancellationToken)
    {
        try
        {
            await backend.RecordLoadAsync(key, seconds, bytes, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            Logger.LogWarning("Could not record the load of {Key} in the run's history: {Reason}", key, e.Message);
        }
    }

    /// <summary>Loads and removes "model" from the checkpoint (fvcore's <c>_load_model</c>).</summary>
    protected virtual IncompatibleKeys? LoadModel(OrderedDictionary<string, object?> checkpoint)
    {
        if (!checkpoint.Remove(ModelKey, out var state)) return null;
        var modelState = state as IDictionary<string, object?> ?? throw new InvalidDataException($"Checkpoint entry 'model' is a {state?.GetType().Name ?? "null"}, not a state dict.");
        // The checkpoint's tensors are this load's own: the model may take their memory over rather than copy them.
        var keys = ModelStateLoader.Load(Model, modelState, takeOwnership: true);
        // Free what the model did not take now rather than at GC (a taken tensor's memory lives on in the model).
        foreach (var value in modelState.Values)
        {
            if (value is IDisposable disposable) disposable.Dispose();
        }
        return keys;
    }
}
