using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Formats;
using Checkpointing.Tests.Shared;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Issue 8: bare .safetensors files (pretrained weights) as written by the official library — made here by hand in
/// Python with the official layout, since Debian ships no <c>safetensors</c> package — through inspect and convert.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class SafetensorsCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string In(string name) => Path.Combine(_dir, name);

    /// <summary>Writes the every-dtype file; returns key → (dtype, shape, SHA-256) as Python computed them.</summary>
    private JsonObject WriteDTypesFile(string path) => JsonNode.Parse(PythonScripts.Run("write_safetensors_dtypes", path))!["tensors"]!.AsObject();

    private static void AssertSameTensors(JsonObject expected, OrderedDictionary<string, object?> actual)
    {
        Assert.Equal(expected.Select(e => e.Key).Order(StringComparer.Ordinal), actual.Keys.Order(StringComparer.Ordinal));
        foreach (var (key, summary) in expected)
        {
            var tensor = Assert.IsType<HostTensor>(actual[key]);
            Assert.Equal((string)summary!["dtype"]!, tensor.DType.Name());
            Assert.Equal(summary["shape"]!.AsArray().Select(d => (long)d!), tensor.Shape);
            Assert.Equal((string)summary["sha256"]!, Convert.ToHexStringLower(SHA256.HashData(tensor.Data)));
        }
    }

    [Fact]
    public async Task Inspect_shows_every_official_dtype_and_the_metadata()
    {
        var expected = WriteDTypesFile(In("weights.safetensors"));

        var result = await CliRunner.Ckpt.InProcess("inspect", In("weights.safetensors"), "--json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("safetensors", (string)result.Json["format"]!);
        var tensors = result.Json["tensors"]!.AsArray().ToDictionary(t => (string)t!["key"]!, t => (string)t!["dtype"]!);
        foreach (var (key, summary) in expected) Assert.Equal((string)summary!["dtype"]!, tensors[key]);
        Assert.Equal("pt", (string)result.Json["values"]!["__metadata__/format"]!);
        Assert.Equal("hand-written", (string)result.Json["values"]!["__metadata__/source"]!);
    }

    [Fact]
    public async Task Convert_to_safetensors_and_through_a_native_checkpoint_keeps_bytes_and_metadata()
    {
        var expected = WriteDTypesFile(In("weights.safetensors"));

        var direct = await CliRunner.Ckpt.InProcess("convert", In("weights.safetensors"), In("copy.safetensors"), "--json");
        Assert.Equal(0, direct.ExitCode);
        Assert.Equal("safetensors", (string)direct.Json["format"]!);
        var (copied, copiedMetadata) = SafetensorsFile.Read(In("copy.safetensors"), HostTensor.Allocator);
        AssertSameTensors(expected, copied);
        Assert.Equal(new Dictionary<string, string> { ["format"] = "pt", ["source"] = "hand-written" }, copiedMetadata);

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("weights.safetensors"), In("native"))).ExitCode);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", In("native"))).ExitCode);
        var inspected = await CliRunner.Ckpt.InProcess("inspect", In("native"), "--json");
        Assert.Equal("hand-written", (string)inspected.Json["values"]!["__metadata__/source"]!);

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("native"), In("back.safetensors"))).ExitCode);
        var (back, backMetadata) = SafetensorsFile.Read(In("back.safetensors"), HostTensor.Allocator);
        AssertSameTensors(expected, back);
        Assert.Equal(copiedMetadata, backMetadata);
    }

    [Fact]
    public async Task Pretrained_safetensors_weights_convert_to_a_pth_that_torch_loads_bit_for_bit()
    {
        var expected = JsonNode.Parse(PythonScripts.Run("write_safetensors_model", In("model.safetensors")))!.AsObject();

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("model.safetensors"), In("model.pth"))).ExitCode);

        var loaded = JsonNode.Parse(PythonScripts.Run("read_pth", In("model.pth")))!.AsObject();
        Assert.Equal(expected.Select(e => e.Key).Order(StringComparer.Ordinal), loaded["model_keys"]!.AsArray().Select(k => (string)k!).Order(StringComparer.Ordinal));
        foreach (var (key, summary) in expected)
            Assert.Equal((string)summary!["sha256"]!, (string)loaded["tensors"]![$"model/{key}"]!["sha256"]!);
        Assert.Equal("pt", (string)loaded["values"]!["__metadata__/format"]!);
    }

    [Fact]
    public async Task Converting_a_dtype_torch_cannot_hold_to_pth_fails_with_one_line_naming_it()
    {
        WriteDTypesFile(In("weights.safetensors"));

        var result = await CliRunner.Ckpt.InProcess("convert", In("weights.safetensors"), In("out.pth"));

        Assert.Equal(1, result.ExitCode);
        Assert.Contains("cannot hold U", result.Error);
        Assert.False(File.Exists(In("out.pth")));
        Assert.Empty(Directory.GetFiles(_dir, ".*"));
    }
}
