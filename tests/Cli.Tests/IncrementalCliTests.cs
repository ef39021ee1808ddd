using System.Text.Json.Nodes;
using Checkpointing.Tests.Shared;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// Incremental checkpoints through the CLI: <c>ckpt-lab demo --freeze</c> writes a frozen backbone once,
/// <c>ckpt ls</c> shows logical and written bytes, the <c>.pth</c> export and an independent Python
/// reader of the folders agree, and <c>ckpt compact</c> makes a checkpoint self-contained.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class IncrementalCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-incremental-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Dir => Path.Combine(_dir, "run");

    // 16 hidden layers, so that --freeze 0.9 freezes 15 of them (93.75% of the parameters, whole tensors first layers first):
    // the trainable rest changes at every step, and so does its SGD momentum, which doubles the bytes that change.
    private static readonly string[] Demo = ["demo", "--freeze", "0.9", "--width", "128", "--depth", "16", "--iters", "40", "--period", "10", "--max-to-keep", "2", "--json"];

    [Fact]
    public async Task Demo_with_a_frozen_backbone_writes_a_fraction_of_the_state_after_the_first_checkpoint()
    {
        var run = await CliRunner.Lab.InProcess([.. Demo, "--dir", Dir]);

        Assert.Equal(0, run.ExitCode);
        var json = run.Json;
        Assert.True((bool)json["incremental"]!);
        Assert.InRange((double)json["frozen_fraction"]!, 0.9, 1.0);
        var logical = (long)json["logical_bytes"]!;
        var written = json["bytes_written"]!.AsArray().Select(n => (long)n!).ToList();
        Assert.Equal(json["saved"]!.AsArray().Count, written.Count);
        Assert.InRange(written[0], logical, logical + 65536); // the first one is whole (plus a shard header)
        Assert.All(written.Skip(1), w => Assert.True(w <= 0.15 * logical, $"wrote {w} of {logical} bytes"));

        var ls = (await CliRunner.Ckpt.InProcess("ls", Dir, "--json")).Json["checkpoints"]!.AsArray();
        var final = ls.Single(c => (string)c!["name"]! == "model_final")!;
        Assert.Equal(logical, (long)final["logical_bytes"]!);
        Assert.Equal(0, (long)final["written_bytes"]!); // saved at the same iteration as model_0000039
        var text = (await CliRunner.Ckpt.InProcess("ls", Dir)).Out;
        Assert.Contains("LOGICAL", text);
        Assert.Contains("WRITTEN", text);
    }

    [Fact]
    public async Task The_pth_export_of_an_incremental_checkpoint_equals_what_an_independent_reader_finds_in_the_folders()
    {
        await CliRunner.Lab.InProcess([.. Demo, "--dir", Dir]);
        var final = Path.Combine(Dir, "model_0000039");
        var pth = Path.Combine(_dir, "final.pth");

        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", final, pth, "--json")).ExitCode);

        var native = JsonNode.Parse(PythonScripts.Run("read_native", final))!.AsObject();
        var exported = JsonNode.Parse(PythonScripts.Run("read_pth", pth))!["tensors"]!.AsObject();
        Assert.Contains(native, t => (string)t.Value!["holder"]! != "model_0000039"); // it does reuse earlier shards
        foreach (var (key, tensor) in native)
        {
            Assert.True(exported.ContainsKey(key), $"{key} missing from the .pth export");
            Assert.Equal((string)tensor!["sha256"]!, (string)exported[key]!["sha256"]!);
        }
    }

    [Fact]
    public async Task Compact_makes_a_checkpoint_self_contained_and_resuming_from_it_matches_an_uninterrupted_run()
    {
        var straight = Path.Combine(_dir, "straight");
        await CliRunner.Lab.InProcess([.. Demo, "--dir", straight]);
        Assert.Equal(3, (await CliRunner.Lab.InProcess([.. Demo, "--dir", Dir, "--stop-at", "25"])).ExitCode);

        var compact = await CliRunner.Ckpt.InProcess("compact", Path.Combine(Dir, "model_0000019"), "--json");
        Assert.Equal(0, compact.ExitCode);
        Assert.True((bool)compact.Json["compacted"]!);
        var inspect = (await CliRunner.Ckpt.InProcess("inspect", Path.Combine(Dir, "model_0000019"), "--json")).Json;
        Assert.All(inspect["shards"]!.AsArray(), s => Assert.Null(s!["reused_from"]));
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(Dir, "model_0000019"))).ExitCode);
        Assert.False((bool)(await CliRunner.Ckpt.InProcess("compact", Path.Combine(Dir, "model_0000019"), "--json")).Json["compacted"]!);

        Assert.Equal(0, (await CliRunner.Lab.InProcess([.. Demo, "--dir", Dir])).ExitCode);
        var a = JsonNode.Parse(PythonScripts.Run("read_native", Path.Combine(straight, "model_final")))!.AsObject();
        var b = JsonNode.Parse(PythonScripts.Run("read_native", Path.Combine(Dir, "model_final")))!.AsObject();
        Assert.Equal(a.Select(p => (p.Key, (string)p.Value!["sha256"]!)), b.Select(p => (p.Key, (string)p.Value!["sha256"]!)));
    }
}
