using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Core;
using Checkpointing.Formats;
using Checkpointing.Tests.Shared;

namespace Checkpointing.Cli.Tests;

[Collection(nameof(CliCollection))]
public sealed class ConvertCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-convert-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string In(string name) => Path.Combine(_dir, name);

    /// <summary>Writes the Python-made Caffe2 .pkl and returns each blob's SHA-256 as float32 bytes, as PyTorch would hash it.</summary>
    private Dictionary<string, string> WriteC2Pkl(string path)
    {
        var blobs = JsonNode.Parse(PythonScripts.Run("write_c2_pkl", path))!.AsObject();
        return blobs.ToDictionary(b => b.Key, b =>
        {
            var floats = b.Value!["values"]!.AsArray().Select(v => (float)(double)v!).ToArray();
            return Convert.ToHexStringLower(SHA256.HashData(MemoryMarshal.AsBytes(floats.AsSpan())));
        });
    }

    private static JsonObject TorchLoad(string pth) => JsonNode.Parse(PythonScripts.Run("read_pth", pth))!.AsObject();

    [Fact]
    public async Task Pkl_to_pth_to_native_to_pth_keeps_every_tensor_and_value()
    {
        var blobs = WriteC2Pkl(In("model.pkl"));

        var first = await CliRunner.Ckpt.InProcess("convert", In("model.pkl"), In("a.pth"), "--rename", "c2", "--json");
        Assert.Equal(0, first.ExitCode);
        Assert.Equal("pth", (string)first.Json["format"]!);
        Assert.Equal(6, (long)first.Json["tensors"]!);
        var a = TorchLoad(In("a.pth"));
        Assert.Equal("OrderedDict", (string)a["model_type"]!);
        // detectron2 renames in the ordinal order of the Caffe2 names: cls_score_*, conv1_*, fc6_*.
        Assert.Equal(["cls_score.bias", "cls_score.weight", "stem.conv1.bias", "stem.conv1.weight", "box_head.fc1.bias", "box_head.fc1.weight"],
            a["model_keys"]!.AsArray().Select(k => (string)k!));
        Assert.Equal(blobs["conv1_w"], (string)a["tensors"]!["model/stem.conv1.weight"]!["sha256"]!);
        Assert.Equal(blobs["fc6_b"], (string)a["tensors"]!["model/box_head.fc1.bias"]!["sha256"]!);
        Assert.NotEqual(blobs["cls_score_w"], (string)a["tensors"]!["model/cls_score.weight"]!["sha256"]!); // background row moved
        Assert.True((bool)a["values"]!["matching_heuristics"]!);
        Assert.Null(a["values"]!["__author__"]);

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("a.pth"), In("native"), "--json")).ExitCode);
        Assert.True(File.Exists(Path.Combine(In("native"), "manifest.json")));
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", In("native"))).ExitCode);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", In("native"), In("c.pth"))).ExitCode);

        var c = TorchLoad(In("c.pth"));
        Assert.Equal(a["tensors"]!.ToJsonString(), c["tensors"]!.ToJsonString());
        Assert.Equal(a["values"]!.ToJsonString(), c["values"]!.ToJsonString());
        Assert.Equal(a["model_keys"]!.ToJsonString(), c["model_keys"]!.ToJsonString());
        Assert.Empty(Directory.GetFiles(_dir, ".*"));
    }

    [Fact]
    public async Task Match_to_aligns_the_source_to_the_targets_keys_and_prints_the_table()
    {
        WriteC2Pkl(In("model.pkl"));
        var target = new Dictionary<string, object?>
        {
            ["model"] = new Dictionary<string, object?>
            {
                ["backbone.stem.conv1.weight"] = HostTensor.Allocate(TensorDType.F32, [4, 3, 3, 3]),
                ["backbone.stem.conv1.bias"] = HostTensor.Allocate(TensorDType.F32, [4]),
                ["roi_heads.box_head.fc1.weight"] = HostTensor.Allocate(TensorDType.F32, [5, 8]),
                ["roi_heads.box_head.fc1.bias"] = HostTensor.Allocate(TensorDType.F32, [5]),
                ["roi_heads.cls_score.weight"] = HostTensor.Allocate(TensorDType.F32, [3, 5]),
                ["roi_heads.cls_score.bias"] = HostTensor.Allocate(TensorDType.F32, [4]),
            },
        };
        using (var stream = File.Create(In("target.pth"))) TorchFiles.Write(stream, target);

        var text = await CliRunner.Ckpt.InProcess("convert", In("model.pkl"), In("aligned.pth"), "--rename", "c2", "--match-to", In("target.pth"));

        Assert.Equal(0, text.ExitCode);
        Assert.Contains("Following weights matched with model:", text.Out, StringComparison.Ordinal);
        Assert.Contains("| Names in Model", text.Out, StringComparison.Ordinal);
        Assert.Contains("| backbone.stem.conv1.*", text.Out, StringComparison.Ordinal);
        Assert.Contains("conv1_{b,w}", text.Out, StringComparison.Ordinal);
        Assert.Contains("warning: Shape of cls_score.bias in checkpoint is torch.Size([3]), while shape of roi_heads.cls_score.bias in model is torch.Size([4]).", text.Out, StringComparison.Ordinal);

        var json = (await CliRunner.Ckpt.InProcess("convert", In("model.pkl"), In("aligned.pth"), "--rename", "c2", "--match-to", In("target.pth"), "--json")).Json;
        var match = json["match"]!;
        Assert.Equal(5, match["matched"]!.AsArray().Count);
        Assert.Contains(match["matched"]!.AsArray(), m => (string)m!["model"]! == "roi_heads.box_head.fc1.weight" && (string)m["checkpoint"]! == "fc6_w");
        Assert.Equal(["cls_score.bias"], match["unmatched"]!.AsArray().Select(k => (string)k!));

        var inspect = (await CliRunner.Ckpt.InProcess("inspect", In("aligned.pth"), "--json")).Json;
        var keys = inspect["tensors"]!.AsArray().Select(t => (string)t!["key"]!).ToList();
        Assert.Equal(["model/backbone.stem.conv1.bias", "model/backbone.stem.conv1.weight", "model/roi_heads.box_head.fc1.bias",
            "model/roi_heads.box_head.fc1.weight", "model/roi_heads.cls_score.weight", "model/cls_score.bias"], keys);
        Assert.Null(inspect["values"]!["matching_heuristics"]);
    }

    [Fact]
    public async Task Match_to_applies_the_caffe2_renames_to_a_caffe2_pkl_as_detectron2_does()
    {
        WriteC2Pkl(In("model.pkl"));
        var target = new Dictionary<string, object?>
        {
            ["model"] = new Dictionary<string, object?>
            {
                ["backbone.stem.conv1.weight"] = HostTensor.Allocate(TensorDType.F32, [4, 3, 3, 3]),
                ["backbone.stem.conv1.bias"] = HostTensor.Allocate(TensorDType.F32, [4]),
                ["roi_heads.box_head.fc1.weight"] = HostTensor.Allocate(TensorDType.F32, [5, 8]),
                ["roi_heads.box_head.fc1.bias"] = HostTensor.Allocate(TensorDType.F32, [5]),
            },
        };
        using (var stream = File.Create(In("target.pth"))) TorchFiles.Write(stream, target);

        // No --rename: the file says __author__ = "Caffe2", which is what makes detectron2 convert the names.
        var result = await CliRunner.Ckpt.InProcess("convert", In("model.pkl"), In("aligned.pth"), "--match-to", In("target.pth"), "--json");

        Assert.Equal(0, result.ExitCode);
        Assert.Equal("c2", (string)result.Json["renamed"]!);
        var matched = result.Json["match"]!["matched"]!.AsArray().ToDictionary(m => (string)m!["model"]!, m => (string)m!["checkpoint"]!);
        Assert.Equal("conv1_w", matched["backbone.stem.conv1.weight"]);
        Assert.Equal("conv1_b", matched["backbone.stem.conv1.bias"]);
        Assert.Equal("fc6_w", matched["roi_heads.box_head.fc1.weight"]);
        Assert.Equal("fc6_b", matched["roi_heads.box_head.fc1.bias"]);
        var keys = TorchLoad(In("aligned.pth"))["model_keys"]!.AsArray().Select(k => (string)k!).ToList();
        Assert.Contains("backbone.stem.conv1.weight", keys);
        Assert.Contains("roi_heads.box_head.fc1.bias", keys);
    }

    [Fact]
    public async Task Inspect_reads_a_pth_written_by_PyTorch()
    {
        PythonScripts.Run("write_d2_folder", _dir);

        var json = (await CliRunner.Ckpt.InProcess("inspect", In("model_0000009.pth"), "--json")).Json;
        var text = await CliRunner.Ckpt.InProcess("inspect", In("model_0000009.pth"));

        Assert.Equal("pth", (string)json["format"]!);
        var weight = json["tensors"]!.AsArray().Single(t => (string)t!["key"]! == "model/0.weight")!;
        Assert.Equal("F32", (string)weight["dtype"]!);
        Assert.Equal([3, 2], weight["shape"]!.AsArray().Select(d => (long)d!));
        Assert.Equal(24, (long)weight["bytes"]!);
        Assert.Equal(4, json["tensors"]!.AsArray().Count(t => ((string)t!["key"]!).EndsWith("/momentum_buffer", StringComparison.Ordinal)));
        Assert.Equal(9, (long)json["values"]!["iteration"]!);
        Assert.Equal(0.1, (double)json["values"]!["optimizer/param_groups/0/lr"]!);
        Assert.Contains("model/1.bias", text.Out, StringComparison.Ordinal);
        Assert.Contains("iteration = 9", text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Convert_refuses_an_unknown_rename()
    {
        var result = await CliRunner.Ckpt.InProcess("convert", In("a.pkl"), In("b.pth"), "--rename", "c3");
        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.Contains("--rename must be c2, got 'c3'", result.Error, StringComparison.Ordinal);
    }
}
