using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.Tests.Shared;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Issue 11: <c>ckpt convert --layout</c> splits a checkpoint into a sharded one (a dimension, flat slices, explicit
/// boxes); <c>ckpt convert</c> consolidates it again into a <c>.pth</c> that torch.load reads and into a whole native
/// checkpoint. Equality is checked by SHA-256 of each tensor's bytes as Python (numpy, torch) sees them.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class ShardedConvertCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-sharded-convert-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string In(string name) => Path.Combine(_dir, name);

    private static readonly (string Key, TensorDType DType, long[] Shape)[] Tensors =
    [
        ("fc1.weight", TensorDType.F32, [6, 5]), ("fc1.bias", TensorDType.F32, [6]), ("emb.weight", TensorDType.F16, [7, 3]),
        ("head.weight", TensorDType.I64, [4, 4]), ("scale", TensorDType.F32, []),
    ];

    private const string Layout = """
        { "parts": 3,
          "tensors": {
            "model/fc1.weight": { "dim": 1 },
            "model/fc1.bias": { "dim": 0 },
            "model/emb.weight": { "flat": true },
            "model/head.weight": { "boxes": [ { "offsets": [0, 0], "shape": [1, 4] }, { "offsets": [1, 0], "shape": [3, 4] } ] },
            "optimizer/state/0/exp_avg": { "dim": 1 } } }
        """;

    /// <summary>A whole native checkpoint of random tensors; returns each tensor's SHA-256 by state path.</summary>
    private async Task<Dictionary<string, string>> WriteWholeAsync(string name)
    {
        var random = new Random(11);
        HostTensor Random(TensorDType dtype, long[] shape)
        {
            var t = HostTensor.Allocate(dtype, shape);
            random.NextBytes(t.Data);
            if (dtype == TensorDType.F16) for (var i = 1; i < t.Data.Length; i += 2) t.Data[i] &= 0x3F; // finite halves, as torch reads them
            if (dtype == TensorDType.F32) for (var i = 3; i < t.Data.Length; i += 4) t.Data[i] &= 0x3F;
            return t;
        }
        var model = new OrderedDictionary<string, object?>(StringComparer.Ordinal);
        foreach (var (key, dtype, shape) in Tensors) model[key] = Random(dtype, shape);
        var expAvg = Random(TensorDType.F32, [6, 5]);
        var state = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["model"] = model,
            ["optimizer"] = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
            {
                ["state"] = new OrderedDictionary<string, object?>(StringComparer.Ordinal) { ["0"] = new OrderedDictionary<string, object?>(StringComparer.Ordinal) { ["exp_avg"] = expAvg } },
            },
            ["iteration"] = 9L,
        };
        await NativeCheckpointWriter.WriteAsync(new FileSystemStore(_dir), name, new CheckpointIdentity("local", name, 9), state, v => v as HostTensor);
        var hashes = model.ToDictionary(p => $"model/{p.Key}", p => Sha256((HostTensor)p.Value!), StringComparer.Ordinal);
        hashes["optimizer/state/0/exp_avg"] = Sha256(expAvg);
        return hashes;
    }

    private static string Sha256(HostTensor t) => Convert.ToHexStringLower(SHA256.HashData(t.Data));

    [Fact]
    public async Task A_checkpoint_split_by_a_layout_file_consolidates_back_to_a_pth_and_a_whole_native_checkpoint()
    {
        var original = await WriteWholeAsync("whole");
        await File.WriteAllTextAsync(In("layout.json"), Layout);

        var split = await CliRunner.Ckpt.InProcess("convert", In("whole"), In("sharded"), "--layout", In("layout.json"), "--json");
        Assert.Equal(0, split.ExitCode);
        Assert.Equal(5, (long)split.Json["sharded_tensors"]!);
        Assert.Equal(3, (long)split.Json["parts"]!);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", In("sharded"))).ExitCode);

        var inspect = (await CliRunner.Ckpt.InProcess("inspect", In("sharded"), "--json")).Json;
        var sharded = inspect["sharded"]!.AsArray().ToDictionary(t => (string)t!["key"]!, t => t!["chunks"]!.AsArray().Count);
        Assert.Equal(new Dictionary<string, int>
        {
            ["model/fc1.weight"] = 3, ["model/fc1.bias"] = 3, ["model/emb.weight"] = 3, ["model/head.weight"] = 2, ["optimizer/state/0/exp_avg"] = 3,
        }, sharded);
        Assert.DoesNotContain(inspect["tensors"]!.AsArray(), t => (string)t!["key"]! == "model/fc1.weight");

        // An independent reader (numpy) assembles the chunks into the original tensors.
        var assembled = JsonNode.Parse(PythonScripts.Run("consolidate_native", In("sharded")))!.AsObject();
        foreach (var key in sharded.Keys) Assert.Equal(original[key], (string)assembled[key]!["sha256"]!);

        var pth = await CliRunner.Ckpt.InProcess("convert", In("sharded"), In("consolidated.pth"), "--json");
        Assert.Equal(0, pth.ExitCode);
        var loaded = JsonNode.Parse(PythonScripts.Run("read_pth", In("consolidated.pth")))!["tensors"]!.AsObject();
        foreach (var (key, sha) in original) Assert.Equal(sha, (string)loaded[key]!["sha256"]!);
        Assert.Equal([6L, 5], loaded["model/fc1.weight"]!["shape"]!.AsArray().Select(d => (long)d!));

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("sharded"), In("single"))).ExitCode);
        var single = (await CliRunner.Ckpt.InProcess("inspect", In("single"), "--json")).Json;
        Assert.Empty(single["sharded"]!.AsArray());
        var native = JsonNode.Parse(PythonScripts.Run("read_native", In("single")))!.AsObject();
        foreach (var (key, sha) in original) Assert.Equal(sha, (string)native[key]!["sha256"]!);
    }

    [Theory]
    [InlineData("""{ "parts": 2, "tensors": { "model/missing": { "dim": 0 } } }""", "has no tensor 'model/missing'")]
    [InlineData("""{ "parts": 2, "tensors": { "model/fc1.weight": { "dim": 2 } } }""", "has no dimension 2")]
    [InlineData("""{ "parts": 2, "tensors": { "model/head.weight": { "boxes": [ { "offsets": [0, 0], "shape": [1, 4] } ] } } }""", "leave elements uncovered")]
    [InlineData("""{ "parts": 0, "tensors": {} }""", "\"parts\" must be an integer")]
    public async Task A_layout_that_does_not_fit_is_refused_in_one_line_and_writes_nothing(string layout, string message)
    {
        await WriteWholeAsync("whole");
        await File.WriteAllTextAsync(In("bad.json"), layout);
        var result = await CliRunner.Ckpt.InProcess("convert", In("whole"), In("out"), "--layout", In("bad.json"));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains(message, result.Error);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.False(Directory.Exists(In("out")) && Directory.EnumerateFileSystemEntries(In("out")).Any());
    }

    [Fact]
    public async Task A_layout_for_a_pth_destination_is_refused()
    {
        await WriteWholeAsync("whole");
        await File.WriteAllTextAsync(In("layout.json"), Layout);
        var result = await CliRunner.Ckpt.InProcess("convert", In("whole"), In("out.pth"), "--layout", In("layout.json"));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("holds whole tensors", result.Error);
    }
}
