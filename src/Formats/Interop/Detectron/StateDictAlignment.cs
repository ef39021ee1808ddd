using System.Text;

namespace Checkpointing.Formats.Interop.Detectron;

/// <summary>
/// detectron2's <c>align_and_update_state_dicts</c>: matches model keys to checkpoint keys that are a
/// complete dotted suffix of them (<c>a == b</c> or <c>a</c> ends with <c>"." + b</c>), taking the longest
/// such checkpoint key, so a model with extra nesting (<c>backbone.bottom_up.res2...</c>) loads
/// weights saved without it.
/// </summary>
public static class StateDictAlignment
{
    /// <param name="modelShapes">the model's state dict keys and shapes</param>
    /// <param name="checkpointShapes">the (already renamed) checkpoint keys and shapes</param>
    /// <param name="originalNames">checkpoint key → name in the file, for the report (identity when null)</param>
    /// <exception cref="ArgumentException">one checkpoint key matches several model keys</exception>
    public static StateDictAlignmentResult Align(
        IReadOnlyDictionary<string, long[]> modelShapes,
        IReadOnlyDictionary<string, long[]> checkpointShapes,
        IReadOnlyDictionary<string, string>? originalNames = null)
    {
        var modelKeys = modelShapes.Keys.Order(StringComparer.Ordinal).ToList();
        var checkpointKeys = checkpointShapes.Keys.Order(StringComparer.Ordinal).ToList();
        var matches = new List<KeyValuePair<string, string>>();
        var matchedBy = new Dictionary<string, string>(StringComparer.Ordinal); // checkpoint key → model key
        var warnings = new List<string>();
        foreach (var modelKey in modelKeys)
        {
            var best = checkpointKeys.Where(c => IsSuffixMatch(modelKey, c)).MaxBy(c => c.Length);
            if (best is null) continue;
            var modelShape = modelShapes[modelKey];
            var checkpointShape = checkpointShapes[best];
            if (!modelShape.AsSpan().SequenceEqual(checkpointShape))
            {
                warnings.Add($"Shape of {best} in checkpoint is {TorchSize(checkpointShape)}, while shape of {modelKey} in model is {TorchSize(modelShape)}.\n"
                    + $"{best} will not be loaded. Please double check and see if this is desired.");
                continue;
            }
            if (matchedBy.TryGetValue(best, out var earlier))
                throw new ArgumentException($"Cannot match one checkpoint key to multiple keys in the model. Ambiguity found for {best} in checkpoint! It matches at least two keys in the model ({modelKey} and {earlier}).");
            matchedBy[best] = modelKey;
            matches.Add(new(modelKey, best));
        }
        var unmatched = checkpointKeys.Where(k => !matchedBy.ContainsKey(k)).ToList();
        var original = (string key) => originalNames?.GetValueOrDefault(key) ?? key;
        var report = matches.Count == 0
            ? "No weights in checkpoint matched with model."
            : MatchReport.Build(matches.ToDictionary(m => m.Key, m => original(m.Value), StringComparer.Ordinal), modelShapes);
        return new StateDictAlignmentResult(matches, warnings, unmatched, report);
    }

    /// <summary>
    /// The whole of detectron2's function for host tensors: optional Caffe2 renaming (see
    /// <see cref="C2NameConversion.ConvertC2DetectronWeights"/>), matching, and the state dict to load.
    /// </summary>
    public static (OrderedDictionary<string, HostTensor> StateDict, StateDictAlignmentResult Alignment) AlignAndUpdateStateDicts(
        IReadOnlyDictionary<string, long[]> modelShapes, IReadOnlyDictionary<string, HostTensor> checkpoint, bool c2Conversion)
    {
        IReadOnlyDictionary<string, HostTensor> renamed = checkpoint;
        IReadOnlyDictionary<string, string>? originals = null;
        if (c2Conversion)
        {
            var (weights, newToOriginal, _) = C2NameConversion.ConvertC2DetectronWeights(checkpoint);
            (renamed, originals) = (weights, newToOriginal);
        }
        var alignment = Align(modelShapes, renamed.ToDictionary(p => p.Key, p => p.Value.Shape, StringComparer.Ordinal), originals);
        return (alignment.Apply(renamed), alignment);
    }

    /// <summary>The checkpoint key must be a complete suffix: "mesh_head.whatever_conv1" does not match "conv1".</summary>
    public static bool IsSuffixMatch(string modelKey, string checkpointKey) =>
        modelKey == checkpointKey
        || (modelKey.Length > checkpointKey.Length
            && modelKey.EndsWith(checkpointKey, StringComparison.Ordinal)
            && modelKey[modelKey.Length - checkpointKey.Length - 1] == '.');

    private static string TorchSize(long[] shape) => $"torch.Size([{string.Join(", ", shape)}])";
}

/// <summary>detectron2's log table of matched weights, parameters of one submodule grouped on one row.</summary>
internal static class MatchReport
{
    public static string Build(IReadOnlyDictionary<string, string> originalByModelKey, IReadOnlyDictionary<string, long[]> modelShapes)
    {
        var modelKeys = originalByModelKey.Keys.Order(StringComparer.Ordinal).ToList();
        var commonPrefix = CommonDottedPrefix(modelKeys);
        var groups = GroupByModule(modelKeys, originalByModelKey);
        var rows = new List<string[]>();
        var done = new HashSet<string>(StringComparer.Ordinal);
        foreach (var key in modelKeys)
        {
            if (done.Contains(key)) continue;
            if (groups.TryGetValue(key, out var group))
            {
                done.UnionWith(group);
                rows.Add([
                    CommonDottedPrefix(group.Select(k => After(k, commonPrefix)).ToList()) + "*",
                    GroupNames(group.Select(k => originalByModelKey[k]).ToList()),
                    string.Join(" ", group.Select(k => Shapes.Tuple(modelShapes[k]).Replace(" ", "", StringComparison.Ordinal))),
                ]);
            }
            else
            {
                rows.Add([After(key, commonPrefix), originalByModelKey[key], Shapes.Tuple(modelShapes[key])]);
            }
        }
        var title = "Following weights matched with " + (commonPrefix.Length > 0 ? $"submodule {commonPrefix[..^1]}" : "model") + ":\n";
        return title + PipeTable(["Names in Model", "Names in Checkpoint", "Shapes"], rows);
    }

    /// <summary>Python's <c>key[len(prefix):]</c>: a single match's "prefix" is the whole key plus a dot, which leaves "".</summary>
    private static string After(string key, string prefix) => prefix.Length < key.Length ? key[prefix.Length..] : "";

    /// <summary>Model keys of one submodule ("a.b." prefix) form a group when their checkpoint names share a prefix.</summary>
    private static Dictionary<string, List<string>> GroupByModule(List<string> keys, IReadOnlyDictionary<string, string> originals)
    {
        var groups = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        var submodules = keys.Select(k => k.LastIndexOf('.') is var dot and >= 0 ? k[..(dot + 1)] : null)
            .OfType<string>()
            .OrderBy(p => p.Length); // stable, like Python's sorted(key=len)
        foreach (var prefix in submodules)
        {
            var group = keys.Where(k => k.StartsWith(prefix, StringComparison.Ordinal)).ToList();
            if (group.Count <= 1 || CommonCharPrefix(group.Select(k => originals[k]).ToList()).Length == 0) continue;
            foreach (var key in group) groups.TryAdd(key, group);
        }
        return groups;
    }

    // detectron2's "longest common prefix" helpers compare the smallest and largest name position by
    // position and keep every position that agrees, even after a difference; the report copies that.

    /// <summary>["abc.zfg", "abc.zef"] → "abc."</summary>
    private static string CommonDottedPrefix(List<string> names)
    {
        var split = names.Select(n => n.Split('.')).ToList();
        var (min, max) = (split.Min(PartsComparer.Instance)!, split.Max(PartsComparer.Instance)!);
        var common = min.Zip(max).Where(p => p.First == p.Second).Select(p => p.First).ToList();
        return common.Count > 0 ? string.Join(".", common) + "." : "";
    }

    private static string CommonCharPrefix(List<string> names)
    {
        var (min, max) = (names.Min(StringComparer.Ordinal)!, names.Max(StringComparer.Ordinal)!);
        return new string(min.Zip(max).Where(p => p.First == p.Second).Select(p => p.First).ToArray());
    }

    /// <summary>"common1", "common2", "common3" → "common{1,2,3}", with batch norm's four blobs shortened to bn_*.</summary>
    private static string GroupNames(List<string> names)
    {
        var prefix = CommonCharPrefix(names);
        var grouped = prefix + "{" + string.Join(",", names.Select(n => n[prefix.Length..])) + "}";
        return grouped
            .Replace("bn_{beta,running_mean,running_var,gamma}", "bn_*", StringComparison.Ordinal)
            .Replace("bn_beta,bn_running_mean,bn_running_var,bn_gamma", "bn_*", StringComparison.Ordinal);
    }

    /// <summary>tabulate's "pipe" format: every column as wide as its widest cell or its header plus 2, left-aligned.</summary>
    private static string PipeTable(string[] headers, List<string[]> rows)
    {
        var widths = headers.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length + 2).Max()).ToArray();
        var text = new StringBuilder();
        void Line(IEnumerable<string> cells) => text.Append("| ").AppendJoin(" | ", cells).Append(" |\n");
        Line(headers.Select((h, i) => h.PadRight(widths[i])));
        text.Append('|').AppendJoin("|", widths.Select(w => ":" + new string('-', w + 1))).Append("|\n");
        foreach (var row in rows) Line(row.Select((c, i) => c.PadRight(widths[i])));
        return text.ToString().TrimEnd('\n');
    }

    /// <summary>Python's ordering of lists of strings: element by element, then shorter first.</summary>
    private sealed class PartsComparer : IComparer<string[]>
    {
        public static readonly PartsComparer Instance = new();

        public int Compare(string[]? x, string[]? y)
        {
            for (var i = 0; i < Math.Min(x!.Length, y!.Length); i++)
            {
                var c = string.CompareOrdinal(x[i], y[i]);
                if (c != 0) return c;
            }
            return x.Length.CompareTo(y.Length);
        }
    }
}
