using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Checkpointing.Cli.Tests;

/// <summary>What the CLI writes never harms what is around it, and a damaged tag stops a run instead of restarting it.</summary>
[Collection(nameof(CliCollection))]
public sealed class SaveSafetyCliTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-safety-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string In(string name) => Path.Combine(_dir, name);

    /// <summary>A small native checkpoint made by the demo; returns its folder.</summary>
    private async Task<string> SmallCheckpoint()
    {
        var demo = await CliRunner.Lab.InProcess("demo", "--dir", In("run"), "--iters", "2", "--period", "1", "--width", "8", "--json");
        Assert.True(demo.ExitCode == 0, demo.Error);
        return Path.Combine(In("run"), "model_final");
    }

    private static Dictionary<string, byte[]> Snapshot(string folder) =>
        Directory.EnumerateFiles(folder, "*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 })
            .ToDictionary(f => Path.GetRelativePath(folder, f), File.ReadAllBytes);

    [Fact]
    public async Task Convert_into_a_folder_holding_user_files_is_refused_and_deletes_nothing()
    {
        var source = await SmallCheckpoint();
        var project = In("project");
        Directory.CreateDirectory(Path.Combine(project, "src"));
        Directory.CreateDirectory(Path.Combine(project, ".git"));
        File.WriteAllText(Path.Combine(project, "src", "Program.cs"), "class P {}");
        File.WriteAllText(Path.Combine(project, ".git", "HEAD"), "ref: refs/heads/main");
        File.WriteAllText(Path.Combine(project, "README.md"), "# project");
        var before = Snapshot(project);

        var result = await CliRunner.Ckpt.InProcess("convert", source, project);

        Assert.Equal(1, result.ExitCode);
        Assert.Contains(project, result.Error);
        Assert.Contains("refusing", result.Error);
        Assert.Equal(before, Snapshot(project));

        // A folder holding only hidden files is foreign too (what `ckpt convert model.pth .` meets in a fresh repository).
        var hiddenOnly = In("hidden_only");
        Directory.CreateDirectory(hiddenOnly);
        File.WriteAllText(Path.Combine(hiddenOnly, ".env"), "SECRET=1");
        Assert.Equal(1, (await CliRunner.Ckpt.InProcess("convert", source, hiddenOnly)).ExitCode);
        Assert.Equal(["SECRET=1"], Directory.GetFiles(hiddenOnly).Select(File.ReadAllText));
    }

    [Fact]
    public async Task Convert_may_replace_a_checkpoint_of_ours()
    {
        var source = await SmallCheckpoint();
        var destination = In("converted");
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", source, destination)).ExitCode);
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("convert", source, destination)).ExitCode);
        Assert.Equal(2, Directory.GetFiles(destination).Length); // manifest + the new shard; the old shard is gone
        Assert.Equal(0, (await CliRunner.Ckpt.InProcess("verify", destination)).ExitCode);
    }

    [Fact]
    public async Task Demo_over_an_empty_tag_fails_naming_it_and_overwrites_nothing()
    {
        await SmallCheckpoint();
        var run = In("run");
        var tag = Path.Combine(run, "last_checkpoint");
        File.WriteAllText(tag, "");
        var before = Snapshot(run);

        var result = await CliRunner.Lab.InProcess("demo", "--dir", run, "--iters", "2", "--period", "1", "--width", "8", "--json");

        Assert.Equal(1, result.ExitCode);
        var error = (string)result.Json["error"]!; // with --json the failure is one object on stdout
        Assert.Contains(tag, error);
        Assert.Contains("empty", error);
        Assert.Equal("bad_input", (string)result.Json["kind"]!);
        Assert.Equal(before, Snapshot(run));
    }

    [Fact]
    public async Task The_folder_is_fsynced_after_the_manifest_is_renamed_into_it()
    {
        var source = await SmallCheckpoint();
        var destination = In("traced");
        var trace = In("strace.log");
        var info = new ProcessStartInfo("strace") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "-f", "-qq", "--seccomp-bpf", "-e", "trace=rename,renameat,renameat2,open,openat,fsync", "-o", trace, "dotnet", CliRunner.Ckpt.Dll, "convert", source, destination })
            info.ArgumentList.Add(a);
        using (var process = Process.Start(info) ?? throw new InvalidOperationException("strace (apt package strace) is needed for this test"))
        {
            var stderr = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            Assert.True(process.ExitCode == 0, await stderr);
        }

        var lines = File.ReadAllLines(trace);
        var rename = Array.FindIndex(lines, l => l.Contains("rename", StringComparison.Ordinal) && l.Contains(".manifest.json.tmp-", StringComparison.Ordinal)
            && l.Contains($"\"{destination}/manifest.json\"", StringComparison.Ordinal));
        Assert.True(rename >= 0, "no rename of the temporary manifest in the trace");
        var open = new Regex($"open(at)?\\((AT_FDCWD, )?\"{Regex.Escape(destination)}\", (?<flags>O_RDONLY[|A-Z_]*)\\) = (?<fd>\\d+)");
        var opened = lines.Skip(rename + 1).Select(l => open.Match(l)).FirstOrDefault(m => m.Success);
        Assert.True(opened is not null, $"the folder {destination} is not opened after the rename");
        // O_CLOEXEC: a child process started during the save must not inherit the folder (and its lock).
        Assert.Equal(["O_CLOEXEC", "O_DIRECTORY", "O_RDONLY"], opened.Groups["flags"].Value.Split('|').Order(StringComparer.Ordinal));
        Assert.Contains(lines.Skip(rename + 1), l => l.Contains($"fsync({opened.Groups["fd"].Value}", StringComparison.Ordinal));
    }
}
