using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;

namespace Checkpointing.Formats.Interop.Detectron;

/// <summary>
/// Opens the checkpoint files detectron2's <c>DetectionCheckpointer</c> accepts and normalizes them
/// to a dict with <c>model</c> (name → tensor), as its <c>_load_file</c> does:
/// <list type="bullet">
/// <item><c>.pkl</c> with <c>model</c> and <c>__author__</c>: a detectron2 model-zoo file, returned as is;</item>
/// <item>other <c>.pkl</c>: a Caffe2 / Detectron1 file; its <c>blobs</c> (or the whole dict) without
/// <c>*_momentum</c> entries become <c>model</c>, with <c>__author__ = "Caffe2"</c> and <c>matching_heuristics</c>;</item>
/// <item><c>.pyth</c>: a pycls torch.save file; <c>model_state</c> without <c>num_batches_tracked</c>
/// becomes <c>model</c>, with <c>__author__ = "pycls"</c> and <c>matching_heuristics</c>;</item>
/// <item><c>.safetensors</c>: pretrained weights, wrapped as <c>{"model": ...}</c> with the file's <c>__metadata__</c>;</item>
/// <item>anything else: a torch.save file, wrapped as <c>{"model": ...}</c> unless it has a <c>model</c> key.</item>
/// </list>
/// </summary>
public static class DetectronCheckpointFile
{
    /// <summary>The key of the model's state dict (name → tensor) in a loaded checkpoint.</summary>
    public const string ModelKey = "model";

    /// <summary>The key naming who produced the weights: <c>"Caffe2"</c> or <c>"pycls"</c> for converted files, or whatever a model-zoo file records.</summary>
    public const string AuthorKey = "__author__";

    /// <summary>
    /// The key that, when true, has a loader match the model's keys to the checkpoint's by heuristics
    /// (<see cref="StateDictAlignment"/>, after renaming Caffe2 names) instead of exactly. Set for Caffe2 and pycls files.
    /// </summary>
    public const string MatchingHeuristicsKey = "matching_heuristics";

    /// <summary>Loads the checkpoint file at <paramref name="path"/> and normalizes it by the rule its extension selects (listed above).</summary>
    /// <param name="path">the file to read; its file name is what errors report</param>
    /// <param name="budget">the limits on reading the untrusted file (<see cref="ReadBudget.Default"/> when null)</param>
    /// <returns>a dict with at least <see cref="ModelKey"/></returns>
    /// <exception cref="CheckpointFormatException">The file is damaged, over the budget, or not laid out as its kind requires.</exception>
    public static OrderedDictionary<string, object?> Load(string path, ReadBudget? budget = null)
    {
        var source = Path.GetFileName(path);
        var extension = Path.GetExtension(path);
        if (extension.Equals(".pkl", StringComparison.OrdinalIgnoreCase)) return FromPickle(SafeUnpickler.LoadFile(path, budget), source);
        if (extension.Equals(".pyth", StringComparison.OrdinalIgnoreCase)) return FromPycls(PthReader.Read(path, budget), source);
        if (SafetensorsFile.HasExtension(path)) return SafetensorsFile.ReadCheckpoint(path, HostTensor.Allocator, ModelKey);
        var loaded = PthReader.Read(path, budget);
        return loaded is OrderedDictionary<string, object?> dict && dict.ContainsKey(ModelKey) ? dict : new() { [ModelKey] = loaded };
    }

    private static OrderedDictionary<string, object?> FromPickle(object? loaded, string source)
    {
        var data = StringDict(loaded, source, "the pickle");
        if (data.ContainsKey(ModelKey) && data.ContainsKey(AuthorKey)) return data;
        if (data.TryGetValue("blobs", out var blobs)) data = StringDict(blobs, source, "'blobs'");
        var model = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in data)
        {
            if (!name.EndsWith("_momentum", StringComparison.Ordinal)) model.Add(name, value);
        }
        return new() { [ModelKey] = model, [AuthorKey] = "Caffe2", [MatchingHeuristicsKey] = true };
    }

    private static OrderedDictionary<string, object?> FromPycls(object? loaded, string source)
    {
        var data = StringDict(loaded, source, "the checkpoint");
        if (!data.TryGetValue("model_state", out var state))
            throw new CheckpointFormatException(source, "pycls", "pycls checkpoints (.pyth) must contain 'model_state'");
        var model = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (name, value) in StringDict(state, source, "'model_state'"))
        {
            if (!name.EndsWith("num_batches_tracked", StringComparison.Ordinal)) model.Add(name, value);
        }
        return new() { [ModelKey] = model, [AuthorKey] = "pycls", [MatchingHeuristicsKey] = true };
    }

    private static OrderedDictionary<string, object?> StringDict(object? value, string source, string what) =>
        value as OrderedDictionary<string, object?>
        ?? throw new CheckpointFormatException(source, "layout", $"{what} is a {value?.GetType().Name ?? "None"}, not a dict with string keys");
}
