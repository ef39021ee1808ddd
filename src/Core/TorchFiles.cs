using Checkpointing.Formats;
using Checkpointing.Formats.Interop;
using Checkpointing.Formats.Interop.Torch;
using static TorchSharp.torch;

namespace Checkpointing.Core;

/// <summary>
/// <c>torch.save</c> files (<c>.pth</c>) for TorchSharp code: reading them into trees of TorchSharp
/// tensors and writing trees of TorchSharp (or host) tensors.
/// </summary>
public static class TorchFiles
{
    /// <summary>The extension of the <c>torch.save</c> files this library writes (fvcore's and detectron2's <c>NAME.pth</c>).</summary>
    public const string Extension = ".pth";

    /// <summary>True for the extensions <c>torch.save</c> files conventionally carry: <c>.pth</c> and <c>.pt</c>.</summary>
    public static bool IsTorchFile(string path) =>
        Path.GetExtension(path) is var e && (e.Equals(Extension, StringComparison.OrdinalIgnoreCase) || e.Equals(".pt", StringComparison.OrdinalIgnoreCase));

    /// <summary>fvcore's <c>_load_file</c> for a torch file: the loaded dict, or <c>{"model": loaded}</c> when it has no "model" key.</summary>
    public static OrderedDictionary<string, object?> Load(string path)
    {
        var loaded = ToTorch(PthReader.Read(path));
        return loaded is OrderedDictionary<string, object?> dict && dict.ContainsKey(Checkpointer.ModelKey)
            ? dict
            : new OrderedDictionary<string, object?>(StringComparer.Ordinal) { [Checkpointer.ModelKey] = loaded };
    }

    /// <summary>Writes <paramref name="data"/> as a <c>torch.save</c> zip; a string-keyed "model" becomes an OrderedDict, as PyTorch state dicts are.</summary>
    public static void Write(Stream destination, IReadOnlyDictionary<string, object?> data, string archiveName = "archive")
    {
        var root = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, value) in data) root.Add(key, key == Checkpointer.ModelKey ? AsOrderedDict(value) : value);
        PthWriter.Write(destination, root, TorchTensors.AsSource, archiveName);
    }

    private static object? AsOrderedDict(object? value)
    {
        if (value is PythonOrderedDict or not IEnumerable<KeyValuePair<string, object?>>) return value;
        var ordered = new PythonOrderedDict();
        foreach (var (key, item) in (IEnumerable<KeyValuePair<string, object?>>)value) ordered.Add(key, item);
        return ordered;
    }

    /// <summary>
    /// Replaces every <see cref="HostTensor"/> in <paramref name="tree"/> (dicts and lists, changed in
    /// place) with a TorchSharp tensor; a host tensor met twice becomes one tensor, so ties survive.
    /// </summary>
    public static object? ToTorch(object? tree) => new HostToTorch().Convert(tree);

    private sealed class HostToTorch
    {
        private readonly Dictionary<HostTensor, Tensor> _tensors = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<object> _visited = new(ReferenceEqualityComparer.Instance);

        public object? Convert(object? value)
        {
            switch (value)
            {
                case HostTensor host:
                    if (!_tensors.TryGetValue(host, out var tensor)) _tensors[host] = tensor = TorchTensors.FromHost(host);
                    return tensor;
                case OrderedDictionary<string, object?> dict when _visited.Add(dict):
                    for (var i = 0; i < dict.Count; i++) dict.SetAt(i, Convert(dict.GetAt(i).Value));
                    return dict;
                case OrderedDictionary<object, object?> dict when _visited.Add(dict):
                    for (var i = 0; i < dict.Count; i++) dict.SetAt(i, Convert(dict.GetAt(i).Value));
                    return dict;
                case List<object?> list when _visited.Add(list):
                    for (var i = 0; i < list.Count; i++) list[i] = Convert(list[i]);
                    return list;
                default:
                    return value;
            }
        }
    }
}
