using System.Collections;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Formats.Interop;

namespace Checkpointing.Formats.Tests.Interop;

/// <summary>
/// The C# twin of Scripts/summary.py: structure, key order, exact float bits and a SHA-256 of every
/// tensor's C-ordered bytes, so one string comparison checks a whole checkpoint against Python.
/// </summary>
internal static class ValueSummary
{
    public static string Of(object? value) => Node(value)?.ToJsonString() ?? "null";

    /// <summary>Normalizes Python's JSON (escapes, spacing) to what <see cref="Of"/> prints.</summary>
    public static string Normalize(string json) => JsonNode.Parse(json)?.ToJsonString() ?? "null";

    private static JsonNode? Node(object? value) => value switch
    {
        null => null,
        bool b => JsonValue.Create(b),
        long l => JsonValue.Create(l),
        double d => new JsonObject { ["float"] = BitConverter.DoubleToInt64Bits(d) },
        string s => JsonValue.Create(s),
        ITensorSource t => new JsonObject
        {
            ["tensor"] = t.DType.ToString(),
            ["shape"] = new JsonArray(t.Shape.Select(d => (JsonNode)JsonValue.Create(d)).ToArray()),
            ["sha256"] = Sha256(t),
        },
        PythonOrderedDict d => Pairs("OrderedDict", d),
        IDictionary d => Pairs("dict", d),
        IList list => new JsonArray(list.Cast<object?>().Select(Node).ToArray()),
        _ => throw new ArgumentException($"no summary for {value.GetType()}"),
    };

    private static string Sha256(ITensorSource tensor)
    {
        using var bytes = new MemoryStream();
        tensor.WriteTo(bytes);
        return Convert.ToHexStringLower(SHA256.HashData(bytes.ToArray()));
    }

    private static JsonObject Pairs(string kind, IDictionary dict)
    {
        var pairs = new JsonArray();
        var entry = dict.GetEnumerator();
        while (entry.MoveNext()) pairs.Add(new JsonArray(Node(entry.Key), Node(entry.Value)));
        return new JsonObject { [kind] = pairs };
    }
}
