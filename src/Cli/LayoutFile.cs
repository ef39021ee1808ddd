using System.Collections;
using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Formats;

namespace Checkpointing.Cli;

/// <summary>
/// A sharded layout for <c>ckpt convert --layout</c> (docs/format.md#sharded-tensors-and-resharding): into how many parts, and per tensor (by state path,
/// as <c>ckpt inspect</c> prints it) how it is cut. Tensors not named stay whole.
/// <code>
/// { "parts": 4,
///   "tensors": {
///     "model/fc1.weight": { "dim": 0 },             // torch.tensor_split along a dimension
///     "model/embed.weight": { "flat": true },       // FSDP-style slices of the flattened tensor
///     "model/head.weight": { "boxes": [ { "offsets": [0, 0], "shape": [2, 8] }, { "offsets": [2, 0], "shape": [6, 8] } ] } } }
/// </code>
/// </summary>
public sealed class LayoutFile
{
    /// <summary>The largest layout file read, in bytes (16 MiB); a larger one is refused before it is parsed.</summary>
    public const long MaxBytes = 16 << 20;

    private readonly Dictionary<string, JsonObject> _tensors;

    private LayoutFile(int parts, Dictionary<string, JsonObject> tensors)
    {
        Parts = parts;
        _tensors = tensors;
    }

    /// <summary>Into how many parts the checkpoint is split (1 to 65,536): the shards written, and the parts of each cut by "dim" or "flat".</summary>
    public int Parts { get; }

    /// <summary>The state paths of the tensors the layout cuts, as <c>ckpt inspect</c> prints them.</summary>
    public IReadOnlyCollection<string> TensorPaths => _tensors.Keys;

    /// <exception cref="InvalidDataException">a file that is not a layout, with what is wrong</exception>
    public static LayoutFile Read(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists) throw new FileNotFoundException($"Layout file {path} does not exist.", path);
        if (info.Length > MaxBytes) throw new InvalidDataException($"{path}: {info.Length} bytes exceeds the layout file limit of {MaxBytes}.");
        JsonObject root;
        try
        {
            root = JsonNode.Parse(File.ReadAllBytes(path), documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false, MaxDepth = 8 }) as JsonObject
                ?? throw new InvalidDataException($"{path}: a layout file is a JSON object.");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not valid JSON: {e.Message}", e);
        }
        var parts = root["parts"] is JsonValue p && p.TryGetValue<int>(out var n) && n is >= 1 and <= 65_536 ? n
            : throw new InvalidDataException($"{path}: \"parts\" must be an integer from 1 to 65536.");
        var tensors = (root["tensors"] as JsonObject ?? throw new InvalidDataException($"{path}: \"tensors\" must be an object of state path → cut."))
            .ToDictionary(t => t.Key, t => t.Value as JsonObject ?? throw new InvalidDataException($"{path}: the cut of '{t.Key}' is not an object."), StringComparer.Ordinal);
        return new LayoutFile(parts, tensors);
    }

    /// <summary>Replaces each named tensor of <paramref name="data"/> with its parts; returns how many tensors were cut.</summary>
    /// <exception cref="InvalidDataException">a named path that is not a tensor of the checkpoint, or a cut that does not fit it</exception>
    public int Apply(OrderedDictionary<string, object?> data, string source)
    {
        foreach (var (path, cut) in _tensors)
        {
            var (value, replace) = Locate(data, path, source);
            var whole = value as HostTensor ?? throw new InvalidDataException($"{source}: '{path}' named by the layout is not a tensor.");
            TensorParts parts;
            try
            {
                parts = HostTensorSlice.Parts(whole, Layouts(cut, whole.Shape, path));
            }
            catch (ArgumentException e)
            {
                throw new InvalidDataException($"layout of '{path}' ({whole}): {e.Message}", e);
            }
            replace(parts);
        }
        return _tensors.Count;
    }

    private IEnumerable<TensorLayout> Layouts(JsonObject cut, long[] shape, string path)
    {
        if (cut["dim"] is JsonValue dim)
        {
            var d = dim.TryGetValue<int>(out var v) ? v : throw new ArgumentException("\"dim\" must be an integer");
            return Enumerable.Range(0, Parts).Select(p => TensorLayout.Split(shape, d, p, Parts)).ToList();
        }
        if (cut["flat"] is JsonValue flat && flat.GetValueKind() == JsonValueKind.True)
            return Enumerable.Range(0, Parts).Select(p => TensorLayout.FlatSplit(shape, p, Parts)).ToList();
        if (cut["boxes"] is JsonArray boxes)
        {
            return boxes.Select(b => b is JsonObject box
                ? TensorLayout.Box(shape, Longs(box, "offsets"), Longs(box, "shape"))
                : throw new ArgumentException("each box is an object with \"offsets\" and \"shape\"")).ToList();
        }
        throw new ArgumentException($"the cut of '{path}' needs \"dim\", \"flat\": true or \"boxes\"");
    }

    private static long[] Longs(JsonObject box, string name) =>
        (box[name] as JsonArray ?? throw new ArgumentException($"a box needs \"{name}\" as an array"))
        .Select(n => n is JsonValue v && v.TryGetValue<long>(out var l) ? l : throw new ArgumentException($"\"{name}\" holds a value that is not an integer")).ToArray();

    /// <summary>The leaf at a '/'-joined path (RFC 6901 escaping, as state paths are written), and how to replace it in its container.</summary>
    private static (object? Value, Action<object?> Replace) Locate(OrderedDictionary<string, object?> data, string path, string source)
    {
        var segments = path.Split('/').Select(s => s.Replace("~1", "/", StringComparison.Ordinal).Replace("~0", "~", StringComparison.Ordinal)).ToArray();
        object? node = data;
        for (var i = 0; i < segments.Length - 1; i++) node = Slot(node, segments[i])?.Value ?? throw Missing(source, path);
        return Slot(node, segments[^1]) ?? throw Missing(source, path);
    }

    /// <summary>A dictionary's entry or a list's element by key or index, with its setter; null when there is none.</summary>
    private static (object? Value, Action<object?> Replace)? Slot(object? node, string segment) => node switch
    {
        IDictionary dict when dict.Contains(segment) => (dict[segment], value => dict[segment] = value),
        IList list when int.TryParse(segment, NumberStyles.None, CultureInfo.InvariantCulture, out var i) && i < list.Count => (list[i], value => list[i] = value),
        _ => null,
    };

    private static InvalidDataException Missing(string source, string path) => new($"{source} has no tensor '{path}' (named by the layout; ckpt inspect lists the paths).");
}
