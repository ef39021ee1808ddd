namespace Checkpointing.Core;

/// <summary>fvcore's grouped messages for keys that did not match, e.g. "layer1.{bias, weight}".</summary>
internal static class IncompatibleKeyMessages
{
    public static string ShapeMismatch(string key, long[] checkpointShape, long[] modelShape) =>
        $"Skip loading parameter '{key}' to the model due to incompatible shapes: {PyTuple(checkpointShape)} in the checkpoint but {PyTuple(modelShape)} in the model! You might want to double check if this is expected.";

    public static string Missing(IEnumerable<string> keys) =>
        "Some model parameters or buffers are not found in the checkpoint:\n" +
        string.Join('\n', GroupKeys(keys).Select(g => g.Key + GroupToString(g.Value)).Order(StringComparer.Ordinal));

    public static string Unexpected(IEnumerable<string> keys) =>
        "The checkpoint state_dict contains keys that are not used by the model:\n" +
        string.Join('\n', GroupKeys(keys).Select(g => "  " + g.Key + GroupToString(g.Value)));

    /// <summary>Groups "a.b.c" under "a.b" with leaf "c", keeping first-seen order of groups.</summary>
    public static List<KeyValuePair<string, List<string>>> GroupKeys(IEnumerable<string> keys)
    {
        var groups = new OrderedDictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var key in keys)
        {
            var pos = key.LastIndexOf('.');
            var (head, leaf) = pos >= 0 ? (key[..pos], key[(pos + 1)..]) : (key, null);
            if (!groups.TryGetValue(head, out var list)) groups.Add(head, list = []);
            if (leaf is not null) list.Add(leaf);
        }
        return groups.ToList();
    }

    private static string GroupToString(List<string> group) => group.Count switch
    {
        0 => "",
        1 => "." + group[0],
        _ => ".{" + string.Join(", ", group.Order(StringComparer.Ordinal)) + "}",
    };

    /// <summary>Python's tuple repr, which fvcore's messages use for shapes: (3,), (3, 2).</summary>
    public static string PyTuple(long[] shape) => shape.Length == 1 ? $"({shape[0]},)" : $"({string.Join(", ", shape)})";
}
