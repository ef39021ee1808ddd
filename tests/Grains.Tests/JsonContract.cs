using System.Text.Json;
using System.Text.Json.Nodes;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// Holds JSON to a contract: a value to an OpenAPI 3.1 schema (the subset the silo's document uses: $ref, type lists, required,
/// additionalProperties false, items, enum), and a documented example to a real answer (the same keys at every level, the same
/// kind of value where both are non-null). Returns what differs, by JSON path; empty when nothing does. Reads trusted input only
/// (the silo's own document, the repository's docs), so it recurses.
/// </summary>
internal static class JsonContract
{
    public static List<string> AgainstSchema(JsonNode? value, JsonNode schema, JsonNode document, string path = "$")
    {
        var problems = new List<string>();
        Check(value, Resolve(schema, document), document, path, problems);
        return problems;
    }

    private static JsonNode Resolve(JsonNode schema, JsonNode document) =>
        schema["$ref"] is { } reference
            ? document["components"]!["schemas"]![((string)reference!)["#/components/schemas/".Length..]] ?? throw new InvalidOperationException($"unresolved {reference}")
            : schema;

    private static void Check(JsonNode? value, JsonNode schema, JsonNode document, string path, List<string> problems)
    {
        var types = schema["type"] switch
        {
            JsonArray list => list.Select(t => (string)t!).ToList(),
            JsonValue one => [(string)one!],
            _ => [],
        };
        var kind = KindOf(value);
        if (types.Count > 0 && !types.Contains(kind) && !(kind == "integer" && types.Contains("number")))
        {
            problems.Add($"{path}: {kind}, the schema says {string.Join(" or ", types)}");
            return;
        }
        if (schema["enum"] is JsonArray allowed && value is not null && !allowed.Any(a => JsonNode.DeepEquals(a, value)))
            problems.Add($"{path}: {value.ToJsonString()} is not one of {allowed.ToJsonString()}");
        if (value is JsonObject obj)
        {
            var properties = schema["properties"]?.AsObject();
            foreach (var required in schema["required"]?.AsArray().Select(r => (string)r!) ?? [])
                if (!obj.ContainsKey(required)) problems.Add($"{path}: no '{required}', which the schema requires");
            foreach (var (name, child) in obj)
            {
                if (properties?[name] is { } property) Check(child, Resolve(property, document), document, $"{path}.{name}", problems);
                else if (schema["additionalProperties"] is JsonValue extra && !(bool)extra) problems.Add($"{path}: '{name}' is not in the schema");
            }
        }
        if (value is JsonArray array && schema["items"] is { } items)
            for (var i = 0; i < array.Count; i++) Check(array[i], Resolve(items, document), document, $"{path}[{i}]", problems);
    }

    /// <summary>Where <paramref name="example"/> (documented) and <paramref name="real"/> (an answer) differ in keys or kinds of value.</summary>
    public static List<string> AgainstAnswer(JsonNode? example, JsonNode? real, string path = "$")
    {
        var problems = new List<string>();
        Compare(example, real, path, problems);
        return problems;
    }

    private static void Compare(JsonNode? example, JsonNode? real, string path, List<string> problems)
    {
        if (example is null || real is null) return; // either may be null where the other is not: the schema says whether null is allowed
        var (documented, answered) = (KindOf(example), KindOf(real));
        if (documented != answered && !(documented is "integer" or "number" && answered is "integer" or "number"))
        {
            problems.Add($"{path}: documented as {documented} ({Short(example)}), answered as {answered} ({Short(real)})");
            return;
        }
        if (example is JsonObject documentedObject && real is JsonObject answeredObject)
        {
            foreach (var key in documentedObject.Select(p => p.Key).Except(answeredObject.Select(p => p.Key))) problems.Add($"{path}: documents '{key}', which the answer does not have");
            foreach (var key in answeredObject.Select(p => p.Key).Except(documentedObject.Select(p => p.Key))) problems.Add($"{path}: the answer has '{key}', which is not documented");
            foreach (var (key, child) in documentedObject)
                if (answeredObject.TryGetPropertyValue(key, out var other)) Compare(child, other, $"{path}.{key}", problems);
        }
        if (example is JsonArray documentedArray && real is JsonArray { Count: > 0 } answeredArray)
            for (var i = 0; i < documentedArray.Count; i++) Compare(documentedArray[i], answeredArray[0], $"{path}[{i}]", problems);
    }

    private static string KindOf(JsonNode? value) => value?.GetValueKind() switch
    {
        null or JsonValueKind.Null => "null",
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        JsonValueKind.Number => value!.AsValue().TryGetValue<long>(out _) || (value.ToJsonString() is var text && !text.Contains('.') && !text.Contains('e') && !text.Contains('E'))
            ? "integer" : "number",
        var other => other.ToString()!,
    };

    private static string Short(JsonNode node) => node.ToJsonString() is { Length: > 40 } text ? text[..40] + "…" : node.ToJsonString();
}
