using System.Runtime.Versioning;
using System.Text.Json.Nodes;
using Checkpointing.Processes;

namespace Checkpointing.Cli.Tests;

/// <summary>
/// A real ckpt process meets a full disk, a read-only folder, a folder it may not write, a silo
/// that is not there: each ends with exit code 1 and one line (with --json: one object on stdout
/// with "error"), the previous checkpoint untouched and no temporary files left.
/// </summary>
[Collection(nameof(CliCollection))]
public sealed class FailureCliTests : IDisposable
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(3);
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-fail-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task Disk_full_during_a_save_is_one_line_keeps_the_previous_checkpoint_and_leaves_no_partial_files()
    {
        using var disk = Tmpfs.Mount(2 << 20);
        // Each checkpoint is ~0.7 MB in two shards: two fit, the third's second shard does not.
        string[] demo = ["demo", "--dir", disk.Path, "--iters", "10", "--period", "1", "--width", "290", "--shards", "2"];

        var text = await CliRunner.Lab.OutOfProcess(Limit, demo);

        AssertOneErrorLine(text, "disk full: No space left on device", tool: "ckpt-lab");
        Assert.Equal("model_0000001", File.ReadAllText(Path.Combine(disk.Path, "last_checkpoint")));
        AssertOnlyCommittedCheckpoints(disk.Path, "model_0000000", "model_0000001");
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(disk.Path, "model_0000001"))).ExitCode);

        // Resumed with --json, the same save fails the same way: one JSON object on stdout.
        var json = await CliRunner.Lab.OutOfProcess(Limit, [.. demo, "--json"]);

        AssertJsonError(json, "disk_full");
        Assert.Equal("model_0000001", File.ReadAllText(Path.Combine(disk.Path, "last_checkpoint")));
        AssertOnlyCommittedCheckpoints(disk.Path, "model_0000000", "model_0000001");

        // In one shard the disk fills on the checkpoint's first file: the folder the save created goes too.
        var oneShard = await CliRunner.Lab.OutOfProcess(Limit, [.. demo[..^2], "--shards", "1"]);

        AssertOneErrorLine(oneShard, "disk full: No space left on device", tool: "ckpt-lab");
        AssertOnlyCommittedCheckpoints(disk.Path, "model_0000000", "model_0000001");
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(disk.Path, "model_0000001"))).ExitCode);
    }

    [Fact]
    public async Task A_read_only_folder_is_one_line_and_leaves_every_file_as_it_was()
    {
        using var disk = Tmpfs.Mount(16 << 20);
        string[] demo = ["demo", "--dir", disk.Path, "--iters", "4", "--period", "2", "--width", "16"];
        Assert.Equal(Checkpointing.Lab.DemoCommand.CrashExitCode, (await CliRunner.Lab.OutOfProcess(Limit, [.. demo, "--stop-at", "2"])).ExitCode);
        var before = Files(disk.Path);
        disk.RemountReadOnly();

        var text = await CliRunner.Lab.OutOfProcess(Limit, demo);
        var json = await CliRunner.Lab.OutOfProcess(Limit, [.. demo, "--json"]);

        AssertOneErrorLine(text, "read-only file system: Read-only file system", tool: "ckpt-lab");
        AssertJsonError(json, "read_only");
        Assert.Equal(before, Files(disk.Path));
        Assert.Equal("model_0000001", File.ReadAllText(Path.Combine(disk.Path, "last_checkpoint")));
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", Path.Combine(disk.Path, "model_0000001"))).ExitCode);
    }

    [Fact]
    [SupportedOSPlatform("linux")]
    public async Task A_folder_the_user_may_not_write_is_one_line_and_leaves_every_file_as_it_was()
    {
        // Root ignores permission bits, so the save runs as the unprivileged user 'nobody'.
        var run = Path.Combine(_dir, "run");
        string[] demo = ["demo", "--dir", run, "--iters", "4", "--period", "2", "--width", "16"];
        Assert.Equal(Checkpointing.Lab.DemoCommand.CrashExitCode, (await CliRunner.Lab.OutOfProcess(Limit, [.. demo, "--stop-at", "2"])).ExitCode);
        File.SetUnixFileMode(_dir, (UnixFileMode)0b111_101_101);
        File.SetUnixFileMode(run, (UnixFileMode)0b111_101_101);
        var before = Files(run);
        string[] asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];

        var text = await CliRunner.Lab.OutOfProcess(Limit, asNobody, demo);
        var json = await CliRunner.Lab.OutOfProcess(Limit, asNobody, [.. demo, "--json"]);

        AssertOneErrorLine(text, "permission denied: Access to the path", tool: "ckpt-lab");
        AssertJsonError(json, "permission_denied");
        Assert.Equal(before, Files(run));
        Assert.Equal("model_0000001", File.ReadAllText(Path.Combine(run, "last_checkpoint")));
    }

    [Fact]
    public async Task An_unreachable_silo_is_one_line_for_commands_and_one_error_event_for_an_agent()
    {
        var nothingListens = $"127.0.0.1:{Azurite.FreePort()}";
        string[] cluster = ["--silo", nothingListens, "--token", "not-checked-before-connecting", "--connect-timeout", "2"];

        var text = await CliRunner.Ckpt.OutOfProcess(Limit, ["run", "show", "acme/r1", .. cluster]);
        var json = await CliRunner.Ckpt.OutOfProcess(Limit, ["run", "show", "acme/r1", "--json", .. cluster]);
        var agent = await CliRunner.Lab.OutOfProcess(Limit, ["agent", "--run", "acme/r1", "--rank", "1", "--world-size", "2", "--epoch", "1", "--store-folder", _dir, .. cluster]);

        AssertOneErrorLine(text, $"cannot reach the silo at {nothingListens} (cluster 'checkpointing-dev') within 2 s");
        AssertJsonError(json, "silo_unreachable");
        var line = AssertJsonError(agent, "silo_unreachable");
        Assert.Equal("error", (string)line["event"]!);
        Assert.Equal(1, (int)line["rank"]!);
    }

    [Fact]
    public async Task Refusing_to_touch_user_files_is_kind_refused()
    {
        var run = Path.Combine(_dir, "run");
        Assert.Equal(0, (await CliRunner.Lab.InProcess("demo", "--dir", run, "--iters", "2", "--period", "1", "--width", "8", "--json")).ExitCode);
        var project = Path.Combine(_dir, "project");
        Directory.CreateDirectory(project);
        File.WriteAllText(Path.Combine(project, "notes.txt"), "mine");
        var linked = Path.Combine(run, "linked");
        Directory.CreateSymbolicLink(linked, Path.Combine(run, "model_final"));

        var convert = await CliRunner.Ckpt.InProcess("convert", Path.Combine(run, "model_final"), project, "--json");
        var inspect = await CliRunner.Ckpt.InProcess("inspect", linked, "--json");

        Assert.Equal(1, convert.ExitCode);
        Assert.Equal("refused", (string)convert.Json["kind"]!);
        Assert.Equal("mine", File.ReadAllText(Path.Combine(project, "notes.txt")));
        Assert.Equal(1, inspect.ExitCode);
        Assert.Equal("refused", (string)inspect.Json["kind"]!);
        Assert.Contains("symbolic link", (string)inspect.Json["error"]!);
    }

    [Fact]
    public async Task The_details_of_a_failure_are_logged_only_with_verbose()
    {
        var missing = Path.Combine(_dir, "missing.pth");

        var plain = await CliRunner.Ckpt.OutOfProcess(Limit, "inspect", missing);
        var verbose = await CliRunner.Ckpt.OutOfProcess(Limit, "inspect", missing, "--verbose");

        AssertOneErrorLine(plain, missing);
        Assert.Equal(1, verbose.ExitCode);
        Assert.Contains("System.IO.FileNotFoundException", verbose.Error, StringComparison.Ordinal);
        Assert.Contains(" at ", verbose.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Usage_errors_are_one_line_or_one_json_object_with_exit_code_2()
    {
        var missingValue = await CliRunner.Ckpt.InProcess("run", "show", "acme/r1", "--silo");
        var json = await CliRunner.Ckpt.InProcess("ls", "--json");

        Assert.Equal(CliApp.UsageExitCode, missingValue.ExitCode);
        Assert.Equal("ckpt: Required argument missing for option: '--silo'. (ckpt run show --help shows the usage)", missingValue.Error.Trim());
        Assert.Equal(CliApp.UsageExitCode, json.ExitCode);
        Assert.Equal("", json.Error);
        Assert.Equal("ls needs DIR (or --run TENANT/RUN)", (string)json.Json["error"]!);
        Assert.Equal("usage", (string)json.Json["kind"]!);
    }

    [Theory]
    [InlineData(new[] { "run", "create", "acme" }, "ckpt: TENANT/RUN: run key 'acme' must be 'tenant/run' (ckpt run create --help shows the usage)")]
    [InlineData(new[] { "run", "show", "acme/../x" }, "ckpt: TENANT/RUN: run key 'acme/../x' must be 'tenant/run' (ckpt run show --help shows the usage)")]
    [InlineData(new[] { "run", "show", "acme/r 1" }, "ckpt: TENANT/RUN: invalid run name 'r 1'")]
    [InlineData(new[] { "ls", "--run", "acme" }, "ckpt: --run: run key 'acme' must be 'tenant/run' (ckpt ls --help shows the usage)")]
    public async Task A_malformed_run_key_is_a_usage_error_of_the_command_that_took_it_before_any_connection(string[] args, string expected)
    {
        var result = await CliRunner.Ckpt.InProcess([.. args, "--silo", "127.0.0.1:1"]);

        Assert.Equal(CliApp.UsageExitCode, result.ExitCode);
        Assert.StartsWith(expected, result.Error.Trim(), StringComparison.Ordinal);
        Assert.Single(result.Error.Trim().Split('\n'));
        Assert.DoesNotContain("(Parameter", result.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_folder_that_does_not_exist_is_not_found_with_exit_code_1()
    {
        var missing = Path.Combine(_dir, "no-such-folder");
        var json = await CliRunner.Ckpt.InProcess("ls", missing, "--json");
        var text = await CliRunner.Ckpt.InProcess("ls", missing);

        Assert.Equal(1, json.ExitCode);
        Assert.Equal("not_found", (string)json.Json["kind"]!);
        Assert.Equal($"no such folder: {missing}", (string)json.Json["error"]!);
        Assert.Equal($"ckpt: no such folder: {missing}", text.Error.Trim());
    }

    /// <summary>Exit code 1 and one line on stderr besides the demo's progress lines: the error, no stack trace.</summary>
    internal static void AssertOneErrorLine(CliResult result, string expected, string tool = "ckpt")
    {
        Assert.True(result.ExitCode == 1, $"exit code {result.ExitCode}; stderr: {result.Error}");
        var lines = NonProgressLines(result.Error);
        Assert.True(lines.Count == 1, $"expected one line on stderr, got {lines.Count}: {result.Error}");
        Assert.StartsWith($"{tool}: ", lines[0], StringComparison.Ordinal);
        Assert.Contains(expected, lines[0], StringComparison.Ordinal);
    }

    /// <summary>Exit code 1, exactly one line on stdout (a JSON object whose "error" is one line), nothing on stderr besides progress.</summary>
    internal static JsonObject AssertJsonError(CliResult result, string kind)
    {
        Assert.True(result.ExitCode == 1, $"exit code {result.ExitCode}; stdout: {result.Out}; stderr: {result.Error}");
        Assert.True(NonProgressLines(result.Error).Count == 0, $"stderr: {result.Error}");
        var lines = result.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var json = JsonNode.Parse(Assert.Single(lines))!.AsObject();
        Assert.Equal(kind, (string)json["kind"]!);
        Assert.DoesNotContain('\n', (string)json["error"]!);
        return json;
    }

    private static List<string> NonProgressLines(string stderr) =>
        stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Where(l => !l.StartsWith("progress ", StringComparison.Ordinal)).ToList();

    /// <summary>Only the named checkpoints remain: no hidden temporary file, no shard without a manifest, no empty folder.</summary>
    private static void AssertOnlyCommittedCheckpoints(string dir, params string[] names)
    {
        Assert.Equal(names, Directory.GetDirectories(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Empty(Directory.EnumerateFileSystemEntries(dir, ".*", SearchOption.AllDirectories));
        foreach (var name in names) Assert.True(File.Exists(Path.Combine(dir, name, "manifest.json")), name);
    }

    /// <summary>Every file under <paramref name="dir"/> with its length: what a failed command must leave as it was.</summary>
    private static SortedDictionary<string, long> Files(string dir) => new(
        Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories).ToDictionary(f => Path.GetRelativePath(dir, f), f => new FileInfo(f).Length), StringComparer.Ordinal);
}
