using System.Text;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;

namespace Checkpointing.Formats.Tests;

/// <summary>Issue 11: a manifest's sharded section is checked like the rest: chunks must hold every element exactly once.</summary>
public class ShardedManifestTests
{
    /// <summary>"model/p" [4, 6] F32: rows 0-1 as a box, rows 2-3 as two boxes split on dimension 1 (an uneven mix).</summary>
    private static string Valid() => Encoding.UTF8.GetString(ManifestJson.Serialize(new CheckpointManifest
    {
        FormatVersion = CheckpointManifest.UnencodedFormatVersion, Run = "r", Name = "model_0000009", Iteration = 9, WorldSize = 3,
        CreatedUtc = DateTimeOffset.UnixEpoch, Shards = [new ShardInfo("shard-00000-of-00001-00000000.safetensors", 200, "crc64:0000000000000000")],
        Tensors = new Dictionary<string, TensorInfo>
        {
            ["model/p@0,0"] = new(0, "F32", [2, 6], [0, 48]),
            ["model/p@2,0"] = new(0, "F32", [2, 4], [48, 80]),
            ["model/p@2,4"] = new(0, "F32", [2, 2], [80, 96]),
        },
        Sharded = new Dictionary<string, ShardedTensorInfo>
        {
            ["model/p"] = new("F32", [4, 6], [new TensorChunk("model/p@0,0", [0, 0], null), new TensorChunk("model/p@2,0", [2, 0], null), new TensorChunk("model/p@2,4", [2, 4], null)]),
        },
        State = new JsonObject { ["model"] = new JsonObject { ["p"] = new JsonObject { ["$tensor"] = "model/p" } } },
    }));

    private static CheckpointFormatException Fails(string text) =>
        Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(Encoding.UTF8.GetBytes(text), "run/model_0000009/manifest.json"));

    private static string Replace(string text, string find, string replace)
    {
        Assert.Contains(find, text);
        return text.Replace(find, replace, StringComparison.Ordinal);
    }

    [Fact]
    public void A_valid_sharded_manifest_round_trips()
    {
        var manifest = ManifestJson.Parse(Encoding.UTF8.GetBytes(Valid()), "m");
        var p = manifest.Sharded["model/p"];
        Assert.Equal([4L, 6], p.Shape);
        Assert.Equal([2L, 4], p.Chunks[2].Offsets!);
        Assert.Equal(Valid(), Encoding.UTF8.GetString(ManifestJson.Serialize(manifest)));
    }

    [Theory]
    [InlineData("\"offsets\": [\n            2,\n            4\n          ]", "\"offsets\": [\n            2,\n            3\n          ]", "overlaps")]
    [InlineData("\"offsets\": [\n            2,\n            4\n          ]", "\"offsets\": [\n            2,\n            5\n          ]", "is not within")]
    [InlineData("\"tensor\": \"model/p@2,4\"", "\"tensor\": \"model/p@2,0\"", "serves twice")]
    [InlineData("\"tensor\": \"model/p@2,4\"", "\"tensor\": \"model/q\"", "which the index lacks")]
    [InlineData("\"dtype\": \"F32\",\n      \"shape\": [\n        4,", "\"dtype\": \"F16\",\n      \"shape\": [\n        4,", "is F32, sharded tensor 'model/p' is F16")]
    [InlineData("\"shape\": [\n        4,\n        6\n      ]", "\"shape\": [\n        5,\n        6\n      ]", "uncovered")]
    [InlineData("\"$tensor\": \"model/p\"", "\"$tensor\": \"model/p@0,0\"", "is a chunk of a sharded tensor")]
    [InlineData("\"format_version\": 3", "\"format_version\": 2", "has no sharded tensors")]
    public void A_damaged_sharded_section_is_refused_with_what_is_wrong(string find, string replace, string message)
    {
        var e = Fails(Replace(Valid(), find, replace));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void A_sharded_tensor_the_state_does_not_reference_is_refused()
    {
        var manifest = ManifestJson.Parse(Encoding.UTF8.GetBytes(Valid()), "m") with { State = new JsonObject { ["lr"] = 0.1 } };
        Assert.Contains("is not referenced by the state", Fails(Encoding.UTF8.GetString(ManifestJson.Serialize(manifest))).Message);
    }

    [Fact]
    public void A_chunk_with_both_offsets_and_a_flat_offset_is_refused()
    {
        var text = Replace(Valid(), "\"tensor\": \"model/p@2,4\",", "\"tensor\": \"model/p@2,4\", \"flat_offset\": 3,");
        Assert.Contains("either offsets or a flat offset", Fails(text).Message);
    }

    [Fact]
    public void Chunks_cutting_a_tensor_into_too_many_cells_are_refused_without_enumerating_them()
    {
        // A staircase of 5,000 chunks cuts the tensor into 25 M cells: over the budget, refused before any is visited.
        var tensors = new Dictionary<string, TensorInfo>();
        var chunks = new List<TensorChunk>();
        for (var i = 0; i < 5000; i++)
        {
            tensors[$"c{i}"] = new TensorInfo(0, "U8", [1, 5000 - i], [0, 5000 - i]);
            chunks.Add(new TensorChunk($"c{i}", [i, i], null));
        }
        var problem = ShardedTensorCheck.Problem(tensors, new Dictionary<string, ShardedTensorInfo> { ["t"] = new("U8", [5000, 5000], chunks) });
        Assert.Contains("cells", problem);
    }

    [Fact]
    public void The_work_budget_is_shared_by_every_sharded_tensor_of_a_manifest()
    {
        // Each tensor [3 M + 1, 2] is covered by its two columns over the first 3 M rows (3 M runs each) and its last row as a flat
        // chunk: 6 M runs alone (under the budget); three of them together exceed it.
        const long Rows = 3_000_000;
        var tensors = new Dictionary<string, TensorInfo>();
        var sharded = new Dictionary<string, ShardedTensorInfo>();
        for (var t = 0; t < 3; t++)
        {
            tensors[$"t{t}@0,0"] = new TensorInfo(0, "U8", [Rows, 1], [0, Rows]);
            tensors[$"t{t}@0,1"] = new TensorInfo(0, "U8", [Rows, 1], [0, Rows]);
            tensors[$"t{t}@last"] = new TensorInfo(0, "U8", [2], [0, 2]);
            sharded[$"t{t}"] = new ShardedTensorInfo("U8", [Rows + 1, 2],
                [new TensorChunk($"t{t}@0,0", [0, 0], null), new TensorChunk($"t{t}@0,1", [0, 1], null), new TensorChunk($"t{t}@last", null, 2 * Rows)]);
        }
        Assert.Contains("runs of elements", ShardedTensorCheck.Problem(tensors, sharded));
        Assert.Null(ShardedTensorCheck.Problem(tensors, new Dictionary<string, ShardedTensorInfo> { ["t0"] = sharded["t0"] }));
    }
}
