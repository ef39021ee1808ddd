using Checkpointing.Formats;
using Checkpointing.Formats.Interop.Detectron;
using Microsoft.Extensions.Logging;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// detectron2's <c>DetectionCheckpointer</c>: a <see cref="Checkpointer"/> that also loads the model
/// zoo formats (<c>.pkl</c> from Detectron / Caffe2 or detectron2's zoo, <c>.pyth</c> from pycls,
/// <c>.pth</c>), honours <c>path?matching_heuristics=True</c>, and, when heuristics apply, renames
/// Caffe2 weights and aligns checkpoint keys to the model's keys and shapes before loading.
/// </summary>
public class DetectionCheckpointer : Checkpointer
{
    private static readonly string[] IgnoredMissingBuffers = ["pixel_mean", "pixel_std"];
    private const string IgnoredUnexpected = "anchor_generator.cell_anchors";

    private readonly AsyncLocal<CheckpointQuery?> _query = new();

    /// <inheritdoc cref="Checkpointer(nn.Module, string, bool, IEnumerable{KeyValuePair{string, object}}?, ILogger?, LocalBackendOptions?)"/>
    public DetectionCheckpointer(nn.Module model, string saveDir = "", bool saveToDisk = true,
        IEnumerable<KeyValuePair<string, object>>? checkpointables = null, ILogger? logger = null, LocalBackendOptions? options = null)
        : base(model, saveDir, saveToDisk, checkpointables, logger, options)
    {
    }

    /// <summary>A detection checkpointer over another backend, e.g. a run grain and blob store (cluster mode).</summary>
    /// <param name="model">The model; its state dict is saved under "model".</param>
    /// <param name="backend">Where checkpoints are saved, listed and tagged.</param>
    /// <param name="checkpointables">Other objects with state: TorchSharp modules, optimizers, LR schedulers, or <see cref="ICheckpointable"/>.</param>
    /// <param name="logger">Receives what saves and loads do, the alignment report and what did not load cleanly; null logs nothing.</param>
    public DetectionCheckpointer(nn.Module model, ICheckpointBackend backend, IEnumerable<KeyValuePair<string, object>>? checkpointables = null, ILogger? logger = null)
        : base(model, backend, checkpointables, logger)
    {
    }

    /// <summary>Loads <paramref name="path"/> without its query; the query is applied (or refused) when the file is read.</summary>
    public override async Task<OrderedDictionary<string, object?>> LoadAsync(string path, IReadOnlyCollection<string>? checkpointables = null, CancellationToken cancellationToken = default)
    {
        if (string.IsNullOrEmpty(path)) return await base.LoadAsync(path, checkpointables, cancellationToken).ConfigureAwait(false);
        var (file, query) = CheckpointQuery.Split(path);
        _query.Value = query;
        return await base.LoadAsync(file, checkpointables, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>detectron2's <c>_load_file</c>: model-zoo files through <see cref="DetectronCheckpointFile"/>, native checkpoints as the base reads them.</summary>
    protected override async Task<OrderedDictionary<string, object?>> LoadFileAsync(string path, CancellationToken cancellationToken)
    {
        var query = _query.Value ?? CheckpointQuery.Split(path).Query;
        var heuristics = query.TakeMatchingHeuristics();
        query.ThrowIfAnyLeft();
        OrderedDictionary<string, object?> checkpoint;
        if (File.Exists(path) && Path.GetFileName(path) != ManifestJson.FileName)
        {
            checkpoint = DetectronCheckpointFile.Load(path);
            // The model stays host memory until it is aligned; everything else is for checkpointables.
            for (var i = 0; i < checkpoint.Count; i++)
            {
                if (checkpoint.GetAt(i).Key != ModelKey) checkpoint.SetAt(i, TorchFiles.ToTorch(checkpoint.GetAt(i).Value));
            }
        }
        else
        {
            checkpoint = await base.LoadFileAsync(path, cancellationToken).ConfigureAwait(false);
        }
        if (heuristics) checkpoint[DetectronCheckpointFile.MatchingHeuristicsKey] = true;
        return checkpoint;
    }

    /// <summary>detectron2's <c>_load_model</c>: align when heuristics apply, load with fvcore's rules, then drop the expected noise.</summary>
    protected override IncompatibleKeys? LoadModel(OrderedDictionary<string, object?> checkpoint)
    {
        if (!checkpoint.TryGetValue(ModelKey, out var state)) return base.LoadModel(checkpoint);
        var model = state as OrderedDictionary<string, object?>
            ?? throw new InvalidDataException($"Checkpoint entry 'model' is a {state?.GetType().Name ?? "null"}, not a state dict with string keys.");
        if (checkpoint.GetValueOrDefault(DetectronCheckpointFile.MatchingHeuristicsKey) is true)
        {
            var c2 = checkpoint.GetValueOrDefault(DetectronCheckpointFile.AuthorKey) as string == "Caffe2";
            model = AlignToModel(model, c2);
        }
        checkpoint[ModelKey] = TorchFiles.ToTorch(model);

        var incompatible = base.LoadModel(checkpoint);
        if (incompatible is null) return null;
        var topLevelBuffers = Model.named_buffers(recurse: false).Select(b => b.name).ToHashSet(StringComparer.Ordinal);
        var missing = incompatible.MissingKeys.Where(k => !(IgnoredMissingBuffers.Contains(k) && topLevelBuffers.Contains(k))).ToList();
        var unexpected = incompatible.UnexpectedKeys.Where(k => !k.Contains(IgnoredUnexpected, StringComparison.Ordinal)).ToList();
        return incompatible with { MissingKeys = missing, UnexpectedKeys = unexpected };
    }

    /// <summary>detectron2's <c>align_and_update_state_dicts</c> over the model's keys and shapes, logging its report and warnings.</summary>
    private OrderedDictionary<string, object?> AlignToModel(OrderedDictionary<string, object?> weights, bool c2Conversion)
    {
        IReadOnlyDictionary<string, string>? originalNames = null;
        if (c2Conversion)
        {
            var host = weights.ToDictionary(p => p.Key, p => AsHost(p.Key, p.Value), StringComparer.Ordinal);
            var (renamed, newToOriginal, log) = C2NameConversion.ConvertC2DetectronWeights(host);
            foreach (var line in log) Logger.LogInformation("{Message}", line);
            weights = new OrderedDictionary<string, object?>(renamed.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value)), StringComparer.Ordinal);
            originalNames = newToOriginal;
        }
        var modelShapes = Model.state_dict().ToDictionary(p => p.Key, p => p.Value.shape, StringComparer.Ordinal);
        var checkpointShapes = weights.ToDictionary(p => p.Key, p => ShapeOf(p.Key, p.Value), StringComparer.Ordinal);
        var alignment = StateDictAlignment.Align(modelShapes, checkpointShapes, originalNames);
        foreach (var warning in alignment.Warnings) Logger.LogWarning("{Message}", warning);
        if (alignment.Matches.Count == 0) Logger.LogWarning("{Message}", alignment.Report);
        else Logger.LogInformation("{Message}", alignment.Report);
        return alignment.Apply<object?>(weights);
    }

    private static HostTensor AsHost(string key, object? value) => value switch
    {
        HostTensor host => host,
        Tensor tensor => TorchTensors.ToHost(tensor),
        _ => throw new InvalidDataException($"Unsupported type found in checkpoint! {key}: {value?.GetType().FullName ?? "null"}"),
    };

    private static long[] ShapeOf(string key, object? value) => value switch
    {
        HostTensor host => host.Shape,
        Tensor tensor => tensor.shape,
        _ => throw new InvalidDataException($"Unsupported type found in checkpoint! {key}: {value?.GetType().FullName ?? "null"}"),
    };
}
