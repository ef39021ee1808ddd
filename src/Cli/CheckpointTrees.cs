using System.Collections;
using System.Globalization;
using System.Text.Json.Nodes;
using Checkpointing.Formats;
using Checkpointing.Formats.Interop.Detectron;
using Checkpointing.Formats.Interop.Pickle;
using Checkpointing.Formats.Interop.Torch;
using Checkpointing.Core;

namespace Checkpointing.Cli;

/// <summary>Checkpoints of every supported format as trees of <see cref="HostTensor"/>s: the CLI converts and inspects without libtorch.</summary>
public static class CheckpointTrees
{
    private static readonly string[] InteropExtensions = [".pth", ".pt", ".pkl", ".pyth", SafetensorsFile.Extension];

    /// <summary>True for a file the interop readers open (by extension); anything else is a native checkpoint folder.</summary>
    public static bool IsInteropFile(string path) =>
        InteropExtensions.Contains(Path.GetExtension(path), StringComparer.OrdinalIgnoreCase);

    /// <summary>The checkpoint normalized as detectron2 loads it: a dict with "model" (see <see cref="DetectronCheckpointFile"/>), or a native checkpoint's state.</summary>
    public static async Task<OrderedDictionary<string, object?>> LoadAsync(string path)
    {
        if (IsInteropFile(path)) return DetectronCheckpointFile.Load(path);
        var (store, key) = NativeCheckpointFiles.Locate(path);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, key);
        return await NativeCheckpointReader.LoadAsync(store, key, manifest, HostTensor.Allocator);
    }

    /// <summary>The file exactly as pickled (no normalization), for inspection.</summary>
    public static object? ReadRaw(string path)
    {
        if (Path.GetExtension(path).Equals(".pkl", StringComparison.OrdinalIgnoreCase)) return SafeUnpickler.LoadFile(path);
        if (!SafetensorsFile.HasExtension(path)) return PthReader.Read(path);
        var (tensors, metadata) = SafetensorsFile.Read(path, HostTensor.Allocator);
        if (metadata.Count > 0) tensors.Insert(0, SafetensorsFile.MetadataKey, new OrderedDictionary<string, object?>(metadata.Select(p => new KeyValuePair<string, object?>(p.Key, p.Value)), StringComparer.Ordinal));
        return tensors;
    }

    /// <summary>Every leaf of the tree (tensors and plain values) with its '/'-joined path, depth first.</summary>
    public static IEnumerable<(string Path, object? Value)> Leaves(object? value, string path = "")
    {
        switch (value)
        {
            case IDictionary dict:
                var entry = dict.GetEnumerator();
                while (entry.MoveNext())
                {
                    foreach (var leaf in Leaves(entry.Value, StateTree.Child(path, Convert.ToString(entry.Key, CultureInfo.InvariantCulture)!))) yield return leaf;
                }
                break;
            case IList list:
                for (var i = 0; i < list.Count; i++)
                {
                    foreach (var leaf in Leaves(list[i], StateTree.Child(path, i.ToString(CultureInfo.InvariantCulture)))) yield return leaf;
                }
                break;
            default:
                yield return (path, value);
                break;
        }
    }

    /// <summary>A plain leaf as JSON; bytes and non-finite numbers as descriptive strings.</summary>
    public static JsonNode? ToJson(object? value) => value switch
    {
        null => null,
        string s => s,
        bool b => b,
        long l => l,
        double d when double.IsFinite(d) => d,
        double d => d.ToString(CultureInfo.InvariantCulture),
        byte[] bytes => $"<{bytes.Length} bytes>",
        _ => value.ToString(),
    };

    /// <summary>The "model" entry as a name → value dict.</summary>
    public static OrderedDictionary<string, object?> Model(OrderedDictionary<string, object?> checkpoint, string path) =>
        checkpoint.GetValueOrDefault(Checkpointer.ModelKey) as OrderedDictionary<string, object?>
        ?? throw new InvalidDataException($"{path}: 'model' is not a dict of named tensors.");

    /// <summary>Each tensor of a "model" dict by key, with its shape (for matching one model's keys to another's).</summary>
    /// <exception cref="InvalidDataException">An entry is not a tensor; the message names it and <paramref name="path"/>.</exception>
    public static Dictionary<string, long[]> Shapes(OrderedDictionary<string, object?> model, string path) =>
        model.ToDictionary(p => p.Key, p => (p.Value as HostTensor ?? throw new InvalidDataException($"{path}: model entry '{p.Key}' is not a tensor.")).Shape, StringComparer.Ordinal);
}
