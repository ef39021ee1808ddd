using System.Text;

namespace Checkpointing.Core;

/// <summary>
/// The query string detectron2 accepts on a checkpoint path (<c>model.pth?matching_heuristics=True</c>),
/// parsed as Python's <c>urllib.parse.parse_qs</c> does: '&amp;'-separated pairs, '+' and %XX decoded,
/// pairs without a value dropped, repeated names collected in order.
/// </summary>
internal sealed class CheckpointQuery
{
    public const string MatchingHeuristics = "matching_heuristics";

    private readonly OrderedDictionary<string, List<string>> _values;

    private CheckpointQuery(string original, OrderedDictionary<string, List<string>> values) => (Original, _values) = (original, values);

    /// <summary>The path as given, query included (for error messages).</summary>
    public string Original { get; }

    /// <summary>Splits <paramref name="path"/> at its first '?' into the path to load and the query.</summary>
    public static (string Path, CheckpointQuery Query) Split(string path)
    {
        var mark = path.IndexOf('?', StringComparison.Ordinal);
        var values = new OrderedDictionary<string, List<string>>(StringComparer.Ordinal);
        if (mark < 0) return (path, new CheckpointQuery(path, values));
        foreach (var pair in path[(mark + 1)..].Split('&'))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq < 0 || eq == pair.Length - 1) continue;
            var name = Unquote(pair[..eq]);
            if (!values.TryGetValue(name, out var list)) values.Add(name, list = []);
            list.Add(Unquote(pair[(eq + 1)..]));
        }
        return (path[..mark], new CheckpointQuery(path, values));
    }

    /// <summary>detectron2's <c>queries.pop("matching_heuristics", "False") == ["True"]</c>.</summary>
    public bool TakeMatchingHeuristics() =>
        _values.Remove(MatchingHeuristics, out var values) && values is ["True"];

    /// <summary>detectron2's refusal of whatever is left (its message, typos included).</summary>
    /// <exception cref="ArgumentException">any query name is left</exception>
    public void ThrowIfAnyLeft()
    {
        if (_values.Count == 0) return;
        var repr = "{" + string.Join(", ", _values.Select(v => $"{PyRepr(v.Key)}: [{string.Join(", ", v.Value.Select(PyRepr))}]")) + "}";
        throw new ArgumentException($"Unsupported query remaining: f{repr}, orginal filename: {Original}");
    }

    private static string Unquote(string text) => Uri.UnescapeDataString(text.Replace('+', ' '));

    /// <summary>Python's repr of a str: single quotes unless the text holds one and no double quote.</summary>
    private static string PyRepr(string text)
    {
        var quote = text.Contains('\'', StringComparison.Ordinal) && !text.Contains('"', StringComparison.Ordinal) ? '"' : '\'';
        var repr = new StringBuilder().Append(quote);
        foreach (var c in text)
        {
            repr.Append(c switch
            {
                '\\' => @"\\",
                '\n' => @"\n",
                '\r' => @"\r",
                '\t' => @"\t",
                _ when c == quote => "\\" + c,
                _ => c.ToString(),
            });
        }
        return repr.Append(quote).ToString();
    }
}
