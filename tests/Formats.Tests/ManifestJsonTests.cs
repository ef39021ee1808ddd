using System.Text;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats.Tests;

public class ManifestJsonTests
{
    private static string ValidManifest(JsonObject? state = null) => Encoding.UTF8.GetString(ManifestJson.Serialize(new CheckpointManifest
    {
        FormatVersion = CheckpointManifest.CurrentFormatVersion, Run = "r", Name = "model_0000009", Iteration = 9, WorldSize = 1,
        CreatedUtc = DateTimeOffset.UnixEpoch, Shards = [new ShardInfo("shard-00000-of-00001-00000000.safetensors", 64, "crc64:0000000000000000")],
        Tensors = new Dictionary<string, TensorInfo> { ["model/w"] = new(0, "F32", [2], [0, 8]) },
        State = state ?? new JsonObject { ["model"] = new JsonObject { ["w"] = new JsonObject { ["$tensor"] = "model/w" } } },
    }));

    private static CheckpointFormatException ParseFails(string text) =>
        Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(Encoding.UTF8.GetBytes(text), "run/model_0000009/manifest.json"));

    [Fact]
    public void A_valid_manifest_parses()
    {
        Assert.Equal(9, ManifestJson.Parse(Encoding.UTF8.GetBytes(ValidManifest()), "m").Iteration);
    }

    /// <summary>Issue 8: System.Text.Json kept the last of two equal keys, so a doctored manifest could change the iteration unseen.</summary>
    [Fact]
    public void A_duplicated_top_level_key_names_the_file_and_the_key()
    {
        var text = ValidManifest().Replace("\"iteration\": 9,", "\"iteration\": 9,\n  \"iteration\": 1000,", StringComparison.Ordinal);
        var e = ParseFails(text);
        Assert.StartsWith("run/model_0000009/manifest.json: ", e.Message);
        Assert.Contains("iteration", e.Message);
    }

    [Fact]
    public void A_duplicated_key_inside_the_state_is_refused()
    {
        var text = ValidManifest(new JsonObject { ["model"] = new JsonObject { ["w"] = new JsonObject { ["$tensor"] = "model/w" } }, ["lr"] = 0.1 })
            .Replace("\"lr\": 0.1", "\"lr\": 0.1, \"lr\": 5.0", StringComparison.Ordinal);
        Assert.Contains("lr", ParseFails(text).Message);
    }

    [Fact]
    public void A_duplicated_tensor_entry_is_refused()
    {
        var text = ValidManifest().Replace("\"model/w\": {", "\"model/w\": {\"shard\": 0, \"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, \"model/w\": {", StringComparison.Ordinal);
        Assert.Contains("model/w", ParseFails(text).Message);
    }

    [Fact]
    public void State_nested_beyond_the_depth_limit_is_refused_with_the_limit()
    {
        var deep = new StringBuilder();
        for (var i = 0; i < ManifestJson.MaxJsonDepth + 10; i++) deep.Append("{\"a\":");
        deep.Append('1').Append('}', ManifestJson.MaxJsonDepth + 10);
        var text = ValidManifest(new JsonObject { ["model"] = new JsonObject { ["w"] = new JsonObject { ["$tensor"] = "model/w" } }, ["deep"] = "X" })
            .Replace("\"X\"", deep.ToString(), StringComparison.Ordinal);
        var e = ParseFails(text);
        Assert.Equal("manifest JSON", e.Check);
        Assert.Contains(ManifestJson.MaxJsonDepth.ToString(System.Globalization.CultureInfo.InvariantCulture), e.Message);
    }

    [Fact]
    public void A_tensor_with_more_dimensions_than_the_limit_is_refused()
    {
        var shape = string.Join(", ", Enumerable.Repeat(1, SafetensorsHeader.MaxRank + 1)) + ", 2";
        var text = ValidManifest().Replace("\"shape\": [\n        2\n      ]", $"\"shape\": [{shape}]", StringComparison.Ordinal);
        Assert.NotEqual(ValidManifest(), text);
        var e = ParseFails(text);
        Assert.Equal("shape", e.Check);
        Assert.Contains($"limit of {SafetensorsHeader.MaxRank}", e.Message);
    }

    [Fact]
    public void Invalid_utf8_in_the_manifest_is_a_format_error()
    {
        var bytes = Encoding.UTF8.GetBytes(ValidManifest().Replace("\"run\": \"r\"", "\"run\": \"rX\"", StringComparison.Ordinal));
        bytes[Array.IndexOf(bytes, (byte)'X')] = 0xC3;
        var e = Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(bytes, "m/manifest.json"));
        Assert.StartsWith("m/manifest.json: ", e.Message);
    }

    [Fact]
    public void A_manifest_over_the_token_budget_is_refused_before_building_nodes()
    {
        var huge = "[" + string.Join(',', Enumerable.Repeat('0', (int)ManifestJson.MaxTokens)) + "]";
        var text = ValidManifest(new JsonObject { ["model"] = new JsonObject { ["w"] = new JsonObject { ["$tensor"] = "model/w" } }, ["big"] = "X" })
            .Replace("\"X\"", huge, StringComparison.Ordinal);
        var e = ParseFails(text);
        Assert.Equal("manifest size", e.Check);
        Assert.Contains($"limit of {ManifestJson.MaxTokens}", e.Message);
    }
}
