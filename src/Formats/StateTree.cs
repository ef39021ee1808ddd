using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace Checkpointing.Formats;

/// <summary>
/// Converts the non-tensor part of a checkpoint between C# values and JSON. Values are
/// <see cref="OrderedDictionary{TKey,TValue}"/> (string keys), <see cref="List{T}"/>, string, long,
/// double, bool, null and tensors. Tensors become <c>{"$tensor": "key"}</c> where key is the
/// '/'-joined path (RFC 6901 escaping) under which they are indexed. Doubles are written with a
/// decimal point or exponent so that 1.0 reads back as a double and 1 as a long; non-finite
/// doubles become <c>{"$float": "NaN"}</c>.
/// </summary>
public static class StateTree
{
    /// <summary>The one property of a JSON object that stands for a tensor: <c>{"$tensor": "key"}</c>, key being the tensor's index key.</summary>
    public const string TensorMarker = "$tensor";

    /// <summary>The one property of a JSON object that stands for a non-finite double, which JSON cannot write: <c>"NaN"</c>, <c>"Infinity"</c> or <c>"-Infinity"</c>.</summary>
    public const string FloatMarker = "$float";

    /// <summary>
    /// Writes <paramref name="root"/> as JSON, calling <paramref name="asTensor"/> on every leaf that is
    /// not a plain value; each tensor found is returned with its key in depth-first order.
    /// </summary>
    public static (JsonObject State, List<NamedTensor> Tensors) Flatten(IReadOnlyDictionary<string, object?> root, Func<object, ITensorSource?> asTensor)
    {
        var tensors = new List<NamedTensor>();
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            WriteValue(writer, root, "", asTensor, tensors);
        }
        var state = (JsonObject)JsonNode.Parse(buffer.ToArray())!;
        return (state, tensors);
    }

    private static void WriteValue(Utf8JsonWriter writer, object? value, string path, Func<object, ITensorSource?> asTensor, List<NamedTensor> tensors)
    {
        switch (value)
        {
            case null: writer.WriteNullValue(); break;
            case string s: writer.WriteStringValue(s); break;
            case bool b: writer.WriteBooleanValue(b); break;
            case int or long or short or sbyte or byte or ushort or uint:
                writer.WriteNumberValue(Convert.ToInt64(value, CultureInfo.InvariantCulture)); break;
            case float f: WriteDouble(writer, f); break;
            case double d: WriteDouble(writer, d); break;
            case System.Collections.IDictionary dict:
                writer.WriteStartObject();
                foreach (System.Collections.DictionaryEntry entry in dict)
                {
                    var key = entry.Key switch
                    {
                        string k => k,
                        int or long => Convert.ToString(entry.Key, CultureInfo.InvariantCulture)!,
                        _ => throw new ArgumentException($"State key {entry.Key} at '{path}' is a {entry.Key.GetType().Name}; only string and integer keys are stored"),
                    };
                    writer.WritePropertyName(key);
                    WriteValue(writer, entry.Value, Child(path, key), asTensor, tensors);
                }
                writer.WriteEndObject();
                break;
            case IReadOnlyDictionary<string, object?> dict:
                writer.WriteStartObject();
                foreach (var (key, item) in dict)
                {
                    writer.WritePropertyName(key);
                    WriteValue(writer, item, Child(path, key), asTensor, tensors);
                }
                writer.WriteEndObject();
                break;
            case System.Collections.IList list:
                writer.WriteStartArray();
                for (var i = 0; i < list.Count; i++) WriteValue(writer, list[i], Child(path, i.ToString(CultureInfo.InvariantCulture)), asTensor, tensors);
                writer.WriteEndArray();
                break;
            case TensorParts parts:
                tensors.AddRange(ShardedTensors.Leaves(path, parts));
                writer.WriteStartObject();
                writer.WriteString(TensorMarker, path);
                writer.WriteEndObject();
                break;
            default:
                var tensor = asTensor(value) ?? throw new ArgumentException($"State value at '{path}' has type {value.GetType().FullName}, which a checkpoint cannot store (use strings, numbers, booleans, null, lists, dictionaries and tensors)");
                tensors.Add(new NamedTensor(path, tensor));
                writer.WriteStartObject();
                writer.WriteString(TensorMarker, path);
                writer.WriteEndObject();
                break;
        }
    }

    private static void WriteDouble(Utf8JsonWriter writer, double d)
    {
        if (!double.IsFinite(d))
        {
            writer.WriteStartObject();
            writer.WriteString(FloatMarker, double.IsNaN(d) ? "NaN" : d > 0 ? "Infinity" : "-Infinity");
            writer.WriteEndObject();
            return;
        }
        var text = d.ToString("R", CultureInfo.InvariantCulture);
        if (text.AsSpan().IndexOfAny(".eE") < 0) text += ".0";
        writer.WriteRawValue(text, skipInputValidation: false);
    }

    /// <summary>Escapes a key for a '/'-joined path (RFC 6901): '~' → "~0", '/' → "~1".</summary>
    public static string Child(string path, string key)
    {
        var escaped = key.Replace("~", "~0", StringComparison.Ordinal).Replace("/", "~1", StringComparison.Ordinal);
        return path.Length == 0 ? escaped : $"{path}/{escaped}";
    }

    /// <summary>Builds C# values from <paramref name="state"/>, asking <paramref name="tensorFor"/> for each tensor reference.</summary>
    public static OrderedDictionary<string, object?> Expand(JsonObject state, Func<string, object> tensorFor) =>
        (OrderedDictionary<string, object?>)ReadValue(state, "", tensorFor)!;

    private static object? ReadValue(JsonNode? node, string path, Func<string, object> tensorFor)
    {
        switch (node)
        {
            case null:
                return null;
            case JsonObject obj when obj.Count == 1 && obj.TryGetPropertyValue(TensorMarker, out var reference):
                return tensorFor(reference?.GetValueKind() == JsonValueKind.String ? reference.GetValue<string>() : throw new FormatException($"'{path}': {TensorMarker} must be a string"));
            case JsonObject obj when obj.Count == 1 && obj.TryGetPropertyValue(FloatMarker, out var special):
                return special?.GetValueKind() == JsonValueKind.String ? special.GetValue<string>() switch
                {
                    "NaN" => double.NaN,
                    "Infinity" => double.PositiveInfinity,
                    "-Infinity" => double.NegativeInfinity,
                    var other => throw new FormatException($"'{path}': unknown {FloatMarker} value '{other}'"),
                } : throw new FormatException($"'{path}': {FloatMarker} must be a string");
            case JsonObject obj:
                var dict = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
                foreach (var (key, child) in obj) dict.Add(key, ReadValue(child, Child(path, key), tensorFor));
                return dict;
            case JsonArray array:
                var list = new List<object?>(array.Count);
                for (var i = 0; i < array.Count; i++) list.Add(ReadValue(array[i], Child(path, i.ToString(CultureInfo.InvariantCulture)), tensorFor));
                return list;
            case JsonValue value:
                return value.GetValueKind() switch
                {
                    JsonValueKind.String => value.GetValue<string>(),
                    JsonValueKind.True => true,
                    JsonValueKind.False => false,
                    JsonValueKind.Number => ReadNumber(value, path),
                    var kind => throw new FormatException($"'{path}': unexpected JSON {kind}"),
                };
            default:
                throw new FormatException($"'{path}': unexpected JSON node");
        }
    }

    private static object ReadNumber(JsonValue value, string path)
    {
        var raw = value.ToJsonString();
        if (raw.AsSpan().IndexOfAny(".eE") >= 0) return double.Parse(raw, NumberStyles.Float, CultureInfo.InvariantCulture);
        return long.TryParse(raw, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l)
            ? l
            : throw new FormatException($"'{path}': integer {raw} does not fit in 64 bits");
    }

    /// <summary>Every tensor reference in <paramref name="node"/> (depth-first), for cross-checking against the index; none for null.</summary>
    public static IEnumerable<string> TensorReferences(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject obj when obj.Count == 1 && obj.TryGetPropertyValue(TensorMarker, out var reference) && reference is JsonValue v && v.GetValueKind() == JsonValueKind.String:
                yield return v.GetValue<string>();
                break;
            case JsonObject obj:
                foreach (var (_, child) in obj)
                foreach (var r in TensorReferences(child)) yield return r;
                break;
            case JsonArray array:
                foreach (var child in array)
                foreach (var r in TensorReferences(child)) yield return r;
                break;
        }
    }
}
