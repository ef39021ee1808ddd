namespace Checkpointing.Cli.Tests;

[Collection(nameof(CliCollection))]
public sealed class DemoCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-cli-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Dir => Path.Combine(_dir, "run");

    [Fact]
    public async Task Demo_crashes_at_stop_at_then_resumes_from_the_last_checkpoint_and_finishes()
    {
        var crashed = await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "50", "--period", "10", "--max-to-keep", "2", "--stop-at", "27", "--json");
        Assert.Equal(3, crashed.ExitCode);
        var first = crashed.Json;
        Assert.Null(first["resumed_from"]);
        Assert.Equal(0, (long)first["start_iter"]!);
        Assert.Equal(["model_0000009", "model_0000019"], first["saved"]!.AsArray().Select(n => (string)n!));
        Assert.Equal("model_0000019", (string)first["last"]!);
        Assert.Equal(27, (long)first["crashed_at"]!);

        var resumed = await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "50", "--period", "10", "--max-to-keep", "2", "--json");
        Assert.Equal(0, resumed.ExitCode);
        var second = resumed.Json;
        Assert.Equal("model_0000019", (string)second["resumed_from"]!);
        Assert.Equal(20, (long)second["start_iter"]!);
        Assert.Equal(["model_0000029", "model_0000039", "model_0000049", "model_final"], second["saved"]!.AsArray().Select(n => (string)n!));
        Assert.Equal("model_final", (string)second["last"]!);

        var ls = (await CliRunner.Ckpt.InProcess("ls", Dir, "--json")).Json;
        Assert.Equal("model_final", (string)ls["last"]!);
        var names = ls["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!).ToList();
        Assert.Equal(["model_0000039", "model_0000049", "model_final"], names);
        Assert.True((bool)ls["checkpoints"]!.AsArray().Single(c => (string)c!["name"]! == "model_final")!["last"]!);
    }

    [Fact]
    public async Task Resumed_demo_ends_with_the_same_weights_as_an_uninterrupted_one()
    {
        var straight = Path.Combine(_dir, "straight");
        await CliRunner.Lab.InProcess("demo", "--dir", straight, "--iters", "30", "--period", "10", "--json");
        await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "30", "--period", "10", "--stop-at", "15", "--json");
        await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "30", "--period", "10", "--json");
        var a = (await CliRunner.Ckpt.InProcess("inspect", Path.Combine(straight, "model_final"), "--json")).Json;
        var b = (await CliRunner.Ckpt.InProcess("inspect", Path.Combine(Dir, "model_final"), "--json")).Json;
        Assert.Equal(a["values"]!.ToJsonString(), b["values"]!.ToJsonString());
        var shardA = File.ReadAllBytes(Directory.GetFiles(Path.Combine(straight, "model_final"), "shard-*").Single());
        var shardB = File.ReadAllBytes(Directory.GetFiles(Path.Combine(Dir, "model_final"), "shard-*").Single());
        Assert.Equal(shardA, shardB);
    }

    [Fact]
    public async Task Inspect_lists_every_tensor_and_the_non_tensor_values()
    {
        await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "10", "--period", "5", "--width", "8", "--json");
        var inspect = (await CliRunner.Ckpt.InProcess("inspect", Path.Combine(Dir, "model_0000004"), "--json")).Json;
        Assert.Equal("model_0000004", (string)inspect["name"]!);
        Assert.Equal(4, (long)inspect["iteration"]!);
        var tensors = inspect["tensors"]!.AsArray();
        var weight = tensors.Single(t => (string)t!["key"]! == "model/0.weight")!;
        Assert.Equal("F32", (string)weight["dtype"]!);
        Assert.Equal([8L, 16L], weight["shape"]!.AsArray().Select(d => (long)d!));
        Assert.Equal(8 * 16 * 4, (long)weight["bytes"]!);
        Assert.Contains(tensors, t => (string)t!["key"]! == "optimizer/state/0/momentum_buffer");
        Assert.Equal(4, (long)inspect["values"]!["iteration"]!);
        Assert.Equal("SGD", (string)inspect["values"]!["optimizer/type"]!);

        var text = await CliRunner.Ckpt.InProcess("inspect", Path.Combine(Dir, "model_0000004"));
        Assert.Contains("model/0.weight", text.Out);
        Assert.Contains("[8, 16]", text.Out);
    }

    [Fact]
    public async Task Verify_passes_a_sound_checkpoint_and_fails_a_damaged_one_with_the_reason()
    {
        await CliRunner.Lab.InProcess("demo", "--dir", Dir, "--iters", "5", "--period", "5", "--json");
        var checkpoint = Path.Combine(Dir, "model_0000004");
        var ok = await CliRunner.Ckpt.InProcess("verify", checkpoint);
        Assert.Equal(0, ok.ExitCode);
        Assert.StartsWith("OK: model_0000004", ok.Out);

        var shard = Directory.GetFiles(checkpoint, "shard-*").Single();
        var bytes = File.ReadAllBytes(shard);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(shard, bytes);
        var bad = await CliRunner.Ckpt.InProcess("verify", checkpoint, "--json");
        Assert.Equal(1, bad.ExitCode);
        Assert.False((bool)bad.Json["ok"]!);
        Assert.Contains("checksum failed", (string)bad.Json["message"]!);
        Assert.Contains(Path.GetFileName(shard), (string)bad.Json["message"]!);
    }

    [Theory]
    [InlineData("ckpt-lab", new[] { "demo" }, "Option '--dir' is required")]
    [InlineData("ckpt-lab", new[] { "demo", "--dir", "x", "--iters", "zero" }, "--iters must be an integer")]
    [InlineData("ckpt-lab", new[] { "demo", "--dir", "x", "--bogus", "1" }, "unknown option '--bogus'")]
    [InlineData("ckpt", new[] { "frobnicate" }, "unknown command or argument 'frobnicate'")]
    [InlineData("ckpt", new[] { "ls" }, "ls needs DIR")]
    public async Task Usage_errors_exit_2_with_a_message(string tool, string[] args, string message)
    {
        var result = await CliRunner.Named(tool).InProcess(args);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(message, result.Error);
    }

    [Fact]
    public async Task Inspect_of_a_folder_without_manifest_says_so()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "empty"));
        var result = await CliRunner.Ckpt.InProcess("inspect", Path.Combine(_dir, "empty"));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("no manifest.json", result.Error);
    }
}

/// <summary>The demo seeds libtorch's global generator: its tests run one at a time.</summary>
[CollectionDefinition(nameof(CliCollection), DisableParallelization = true)]
public sealed class CliCollection;
