namespace Checkpointing.Cli.Tests;

/// <summary>A save folder where some checkpoints are damaged: `ckpt ls` lists the sound ones and marks the others; inspect and verify name the bad file.</summary>
[Collection(nameof(CliCollection))]
public sealed class DamagedFolderCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-damaged-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Manifest(string name) => Path.Combine(_dir, name, "manifest.json");

    [Fact]
    public async Task A_tag_naming_a_pth_checkpoint_file_is_sound()
    {
        var native = Path.Combine(_dir, "native");
        Assert.Equal(0, (await CliRunner.Lab.InProcess("demo", "--dir", native, "--iters", "2", "--period", "1", "--width", "8", "--json")).ExitCode);
        var pthRun = Path.Combine(_dir, "pth");
        Directory.CreateDirectory(pthRun);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", Path.Combine(native, "model_final"), Path.Combine(pthRun, "model_final.pth"))).ExitCode);
        File.WriteAllText(Path.Combine(pthRun, "last_checkpoint"), "model_final.pth");

        var ls = await CliRunner.Ckpt.InProcess("ls", pthRun, "--json");

        Assert.Equal(0, ls.ExitCode);
        Assert.Equal("model_final.pth", (string)ls.Json["last"]!);
        Assert.Null(ls.Json["last_error"]);
    }

    [Fact]
    public async Task Ls_lists_the_sound_checkpoints_and_marks_each_damaged_one_with_the_file_at_fault()
    {
        Assert.Equal(0, (await CliRunner.Lab.InProcess("demo", "--dir", _dir, "--iters", "5", "--period", "1", "--width", "8", "--json")).ExitCode);
        var all = (await CliRunner.Ckpt.InProcess("ls", _dir, "--json")).Json["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!).ToList();
        // A duplicated key, a truncated manifest, a missing shard.
        var manifest = File.ReadAllText(Manifest("model_0000000"));
        Assert.Contains("\"run\":", manifest, StringComparison.Ordinal);
        File.WriteAllText(Manifest("model_0000000"), "{\"run\":\"other\"," + manifest[(manifest.IndexOf('{', StringComparison.Ordinal) + 1)..]);
        var truncated = File.ReadAllBytes(Manifest("model_0000001"));
        File.WriteAllBytes(Manifest("model_0000001"), truncated[..(truncated.Length / 2)]);
        File.Delete(Directory.GetFiles(Path.Combine(_dir, "model_0000002"), "shard-*").First());

        var json = await CliRunner.Ckpt.InProcess("ls", _dir, "--json");
        var text = await CliRunner.Ckpt.InProcess("ls", _dir);

        Assert.Equal(0, json.ExitCode);
        Assert.Equal(all.Except(["model_0000000", "model_0000001", "model_0000002"]), json.Json["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!));
        var damaged = json.Json["damaged"]!.AsArray().ToDictionary(d => (string)d!["name"]!, d => (string)d!["error"]!);
        Assert.Equal(["model_0000000", "model_0000001", "model_0000002"], damaged.Keys.Order(StringComparer.Ordinal));
        Assert.Contains("model_0000000/manifest.json", damaged["model_0000000"], StringComparison.Ordinal);
        Assert.Contains("model_0000001/manifest.json", damaged["model_0000001"], StringComparison.Ordinal);
        Assert.Contains("model_0000002/shard-", damaged["model_0000002"], StringComparison.Ordinal);
        Assert.Contains("missing", damaged["model_0000002"], StringComparison.Ordinal);
        Assert.Equal("model_final", (string)json.Json["last"]!);
        Assert.Equal(0, text.ExitCode);
        Assert.Contains("* model_final", text.Out, StringComparison.Ordinal);
        Assert.Contains("! model_0000001", text.Out, StringComparison.Ordinal);
        Assert.Contains("DAMAGED: ", text.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Inspect_and_verify_of_a_manifest_with_a_duplicated_key_name_the_file()
    {
        Assert.Equal(0, (await CliRunner.Lab.InProcess("demo", "--dir", _dir, "--iters", "2", "--period", "1", "--width", "8", "--json")).ExitCode);
        var manifest = File.ReadAllText(Manifest("model_0000000"));
        File.WriteAllText(Manifest("model_0000000"), "{\"name\":\"model_0000000\"," + manifest[(manifest.IndexOf('{', StringComparison.Ordinal) + 1)..]);
        var checkpoint = Path.Combine(_dir, "model_0000000");

        var inspect = await CliRunner.Ckpt.InProcess("inspect", checkpoint);
        var verify = await CliRunner.Ckpt.InProcess("verify", checkpoint, "--json");

        FailureCliTests.AssertOneErrorLine(inspect, "model_0000000/manifest.json");
        Assert.Equal(1, verify.ExitCode);
        Assert.False((bool)verify.Json["ok"]!);
        Assert.Contains("model_0000000/manifest.json", (string)verify.Json["error"]!, StringComparison.Ordinal);
    }
}
