using System.Diagnostics;

namespace Checkpointing.Cli.Tests;

/// <summary>A real ckpt process is SIGKILLed while it is writing a checkpoint's shards.</summary>
[Collection(nameof(CliCollection))]
public sealed class KillDuringSaveTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("ckpt-kill-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] DemoArgs = ["--iters", "100000", "--period", "1", "--max-to-keep", "2", "--width", "2048", "--shards", "4"];

    [Fact]
    public async Task Killed_mid_save_leaves_the_previous_checkpoint_tagged_and_loadable()
    {
        var (tagged, inFlight) = await KillWhileWritingShards();

        // The checkpoint being written has temporary shard files but no manifest: it does not exist.
        Assert.NotEqual(tagged, inFlight);
        Assert.False(File.Exists(Path.Combine(_dir, inFlight, "manifest.json")));
        Assert.Equal(tagged, File.ReadAllText(Path.Combine(_dir, "last_checkpoint")));

        var ls = (await CliRunner.Ckpt.InProcess("ls", _dir, "--json")).Json;
        Assert.Equal(tagged, (string)ls["last"]!);
        Assert.DoesNotContain(inFlight, ls["checkpoints"]!.AsArray().Select(c => (string)c!["name"]!));

        var verify = await CliRunner.Ckpt.InProcess("verify", Path.Combine(_dir, tagged));
        Assert.Equal(0, verify.ExitCode);

        // A new process resumes from the tagged checkpoint and finishes.
        var taggedIteration = long.Parse(tagged["model_".Length..], System.Globalization.CultureInfo.InvariantCulture);
        var resume = await CliRunner.Lab.OutOfProcess(TimeSpan.FromMinutes(3), ["demo", "--dir", _dir, .. DemoArgs[2..], "--iters", $"{taggedIteration + 3}", "--json"]);
        Assert.True(resume.ExitCode == 0, resume.Error);
        Assert.Equal(tagged, (string)resume.Json["resumed_from"]!);
        Assert.Equal(taggedIteration + 1, (long)resume.Json["start_iter"]!);
        Assert.Equal("model_final", (string)resume.Json["last"]!);
    }

    [Fact]
    public async Task Repeated_kills_leave_only_the_retained_checkpoints_and_the_tag_after_the_next_run()
    {
        const int kills = 5;
        for (var kill = 0; kill < kills; kill++) await KillOnceWritingShards();

        var tagged = File.ReadAllText(Path.Combine(_dir, "last_checkpoint"));
        var taggedIteration = long.Parse(tagged["model_".Length..], System.Globalization.CultureInfo.InvariantCulture);
        var resume = await CliRunner.Lab.OutOfProcess(TimeSpan.FromMinutes(3), ["demo", "--dir", _dir, .. DemoArgs[2..], "--iters", $"{taggedIteration + 3}", "--json", "--leftover-min-age", "0"]); // the kills were just now
        Assert.True(resume.ExitCode == 0, resume.Error);

        // max_to_keep 2: the two newest periodic checkpoints, model_final, and the tag; nothing hidden, nothing half-written.
        string[] retained = [$"model_{taggedIteration + 1:D7}", $"model_{taggedIteration + 2:D7}", "model_final"];
        var all = new EnumerationOptions { AttributesToSkip = 0 };
        Assert.Equal(retained.Append("last_checkpoint").Order(StringComparer.Ordinal),
            Directory.EnumerateFileSystemEntries(_dir, "*", all).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var name in retained)
        {
            var manifest = Formats.ManifestJson.Parse(File.ReadAllBytes(Path.Combine(_dir, name, "manifest.json")), name);
            Assert.Equal(manifest.Shards.Select(s => s.Path).Append("manifest.json").Order(StringComparer.Ordinal),
                Directory.EnumerateFileSystemEntries(Path.Combine(_dir, name), "*", all).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        }
    }

    /// <summary>Runs the demo until it has committed a checkpoint of its own and is writing the next one's shards, then SIGKILLs it.</summary>
    private async Task KillOnceWritingShards()
    {
        var tagFile = Path.Combine(_dir, "last_checkpoint");
        var tagBefore = File.Exists(tagFile) ? File.ReadAllText(tagFile) : null;
        var leftBefore = Directory.EnumerateFiles(_dir, ".shard-*.tmp-*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).ToHashSet();
        using var process = CliRunner.Lab.Start(["demo", "--dir", _dir, .. DemoArgs]);
        var stderr = process.StandardError.ReadToEndAsync();
        try
        {
            var deadline = Stopwatch.StartNew();
            while (deadline.Elapsed < TimeSpan.FromMinutes(2))
            {
                if (process.HasExited) throw new InvalidOperationException($"demo exited early with {process.ExitCode}: {await stderr}");
                var tag = File.Exists(tagFile) ? File.ReadAllText(tagFile) : null;
                if (tag is not null && tag != tagBefore && Directory.EnumerateFiles(_dir, ".shard-*.tmp-*", new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }).Any(f => !leftBefore.Contains(f)))
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                    return;
                }
                await Task.Delay(1);
            }
            throw new TimeoutException("the demo did not start writing a second checkpoint within 2 minutes");
        }
        finally
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                await process.WaitForExitAsync();
            }
        }
    }

    /// <summary>Starts the demo, waits for a first committed checkpoint, then kills the process as soon as a later one's shards are being written.</summary>
    private async Task<(string Tagged, string InFlight)> KillWhileWritingShards()
    {
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            using var process = CliRunner.Lab.Start(["demo", "--dir", _dir, .. DemoArgs]);
            var stderr = process.StandardError.ReadToEndAsync();
            try
            {
                var deadline = Stopwatch.StartNew();
                while (deadline.Elapsed < TimeSpan.FromMinutes(2))
                {
                    if (process.HasExited) throw new InvalidOperationException($"demo exited early with {process.ExitCode}: {await stderr}");
                    var tagFile = Path.Combine(_dir, "last_checkpoint");
                    var tagged = File.Exists(tagFile) ? File.ReadAllText(tagFile) : null;
                    var temp = tagged is null ? null : Directory.EnumerateFiles(_dir, ".shard-*.tmp-*", SearchOption.AllDirectories).FirstOrDefault();
                    if (temp is not null)
                    {
                        process.Kill(entireProcessTree: true);
                        await process.WaitForExitAsync();
                        var inFlight = Path.GetFileName(Path.GetDirectoryName(temp)!);
                        var tagAfter = File.ReadAllText(tagFile);
                        // Only a kill that landed before the shard's rename proves the point; otherwise try again.
                        if (File.Exists(temp) && inFlight != tagAfter) return (tagAfter, inFlight);
                        break;
                    }
                    await Task.Delay(1);
                }
            }
            finally
            {
                if (!process.HasExited)
                {
                    process.Kill(entireProcessTree: true);
                    await process.WaitForExitAsync();
                }
            }
        }
        throw new InvalidOperationException("could not kill the demo while it was writing shards in 3 attempts");
    }
}
