using System.Diagnostics;

namespace Checkpointing.Cli.Tests;

/// <summary><c>ckpt-bench commits</c> as scripts/test.sh runs it: real Azurite, two real silos, the agents' client path.</summary>
[Collection(nameof(CliCollection))]
public sealed class BenchCliTests
{
    private static readonly TimeSpan Limit = TimeSpan.FromMinutes(8);

    [Fact]
    public async Task Production_config_commits_every_checkpoint_with_exact_catalogs_and_measures_the_window()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit,
            "commits", "--runs", "50", "--ranks", "4", "--commits", "2", "--grain-state", "blob", "--store", "blob", "--silos", "2", "--warmup-seconds", "0", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json; // the whole of stdout is one object
        Assert.Equal(0, (long)summary["failed"]!);
        Assert.Empty(summary["failures_by_type"]!.AsObject()); // catalog mismatches would be listed here
        Assert.Equal(100, (long)summary["commits"]!);
        Assert.True((double)summary["commits_per_s"]! > 0);
        Assert.True((double)summary["p50_ms"]! <= (double)summary["p99_ms"]!);
        Assert.True((double)summary["p99_ms"]! <= (double)summary["max_ms"]!);
        // Every commit persists run state at least once, as blob PUTs with a body.
        Assert.True((long)summary["state_writes"]! >= 100, summary.ToJsonString());
        Assert.True((long)summary["state_bytes_written"]! > 0, summary.ToJsonString());
        Assert.True((double)summary["silo_cpu_s"]! > 0, summary.ToJsonString());
        Assert.True((double)summary["azurite_cpu_s"]! > 0, summary.ToJsonString());
        // Storage requests per commit, ranks' and silos' together: at least each rank's shard PUT, the manifest PUT and the state PUT.
        var perCommit = summary["requests_per_commit"]!;
        Assert.True((double)perCommit["put"]! >= 4 + 1 + 1, summary.ToJsonString());
        Assert.Equal((double)perCommit["total"]!, (double)perCommit["put"]! + (double)perCommit["get"]! + (double)perCommit["head"]! + (double)perCommit["delete"]! + (double)perCommit["other"]!, 2);
        // The same request mix sent by the SDK alone: the storage's capacity, and what share of it the control plane reaches.
        var capacity = (double)summary["storage_capacity_commits_per_s"]!;
        Assert.True(capacity > 0, summary.ToJsonString());
        var expected = (double)summary["commits_per_s"]! / capacity;
        Assert.InRange((double)summary["storage_capacity_ratio"]!, expected * 0.99, expected * 1.01);
    }

    [Fact]
    public async Task Memory_grain_state_counts_the_serialized_writes_without_blob_grain_storage()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit,
            "commits", "--runs", "4", "--ranks", "2", "--commits", "2", "--grain-state", "memory", "--store", "blob", "--silos", "1", "--warmup-seconds", "0", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json;
        Assert.Equal(8, (long)summary["commits"]!);
        Assert.True((long)summary["state_writes"]! >= 8, summary.ToJsonString());
        Assert.True((long)summary["state_bytes_written"]! > 0, summary.ToJsonString());
        // One warm-up round cannot span the 5 seconds of little compilation that say JIT compilation settled, and the summary says so.
        Assert.False((bool)summary["warmup_settled"]!, summary.ToJsonString());
        Assert.True((double)summary["warmup_s"]! > 0, summary.ToJsonString());
    }

    /// <summary>Issue 29's A/B: windows without and with heartbeats in one run, ABBA, each window's checkpoints following the last's.</summary>
    [Fact]
    public async Task Heartbeat_pairs_alternate_windows_without_and_with_heartbeats_and_every_catalog_holds_every_window()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit,
            "commits", "--runs", "4", "--ranks", "2", "--commits", "5", "--grain-state", "memory", "--store", "memory", "--silos", "1", "--warmup-seconds", "0",
            "--heartbeat-ab", "2", "--heartbeat-ms", "20", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json;
        Assert.Equal(80, (long)summary["commits"]!); // 4 windows x 4 runs x 5: the catalog check found each run's 20 checkpoints
        Assert.Equal(0, (long)summary["failed"]!);
        var ab = summary["heartbeat_ab"]!;
        Assert.Equal(2, ab["off_commits_per_s"]!.AsArray().Count);
        Assert.Equal(2, ab["on_commits_per_s"]!.AsArray().Count);
        Assert.True((long)ab["heartbeats_sent"]! > 0, summary.ToJsonString());
        Assert.Equal(0, (long)ab["heartbeats_failed"]!);
        Assert.True((double)ab["on_over_off"]! > 0, summary.ToJsonString());
    }

    [Fact]
    public async Task With_a_rate_checkpoints_start_on_schedule_in_memory_storage_and_all_commit()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit,
            "commits", "--runs", "4", "--ranks", "2", "--commits", "3", "--grain-state", "memory", "--store", "memory", "--silos", "1", "--rate", "20", "--warmup-seconds", "0", "--json");

        Assert.True(result.ExitCode == 0, $"exit {result.ExitCode}: {result.Out}\n{result.Error}");
        var summary = result.Json;
        Assert.Equal(12, (long)summary["commits"]!);
        Assert.Equal(0, (long)summary["failed"]!);
        Assert.Equal(20, (double)summary["rate"]!);
        Assert.Null(summary["azurite_cpu_s"]); // nothing was stored in Azurite: it was not started
        // The last checkpoint is due (2 x 4 runs + 3) / 20 = 0.55 s into the window: the window cannot be shorter.
        Assert.True((double)summary["window_s"]! >= 0.55, summary.ToJsonString());
    }

    [Fact]
    public async Task Checkpoints_left_when_the_window_ends_are_failures_with_exit_code_1_and_one_error_line()
    {
        var result = await CliRunner.Bench.OutOfProcess(Limit,
            "commits", "--runs", "2", "--ranks", "2", "--commits", "1000", "--max-seconds", "2", "--silos", "1", "--warmup-seconds", "0");

        Assert.Equal(1, result.ExitCode);
        var errors = result.Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("ckpt: ", StringComparison.Ordinal)).ToList();
        var error = Assert.Single(errors);
        // Both runs saved fewer than 1,000 checkpoints in 2 s, so both catalogs are short as well.
        Assert.Matches(@"^ckpt: bench: \d+ failure\(s\): catalog 2, window_expired \d+$", error);
        Assert.Contains("failures ", result.Out, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_usage_error_is_one_line_or_one_json_object_and_starts_nothing()
    {
        var plain = await CliRunner.Bench.InProcess("commits", "--runs", "0");
        var json = await CliRunner.Bench.InProcess("commits", "--store", "s3", "--json");
        var unknown = await CliRunner.Bench.InProcess("rollbacks");

        Assert.Equal(CliApp.UsageExitCode, plain.ExitCode);
        Assert.Equal("", plain.Out);
        Assert.Equal("ckpt-bench: --runs must be an integer >= 1, got '0' (ckpt-bench commits --help shows the usage)", plain.Error.Trim());
        Assert.Equal(CliApp.UsageExitCode, json.ExitCode);
        Assert.Equal("", json.Error);
        Assert.Equal("--store must be blob or memory, got 's3'", (string)json.Json["error"]!);
        Assert.Equal("usage", (string)json.Json["kind"]!);
        Assert.Equal(CliApp.UsageExitCode, unknown.ExitCode);
        Assert.Contains("unknown command or argument 'rollbacks'", unknown.Error, StringComparison.Ordinal);
    }

    /// <summary>
    /// CI runners and shells end a command with SIGTERM to it alone: whatever ckpt started (silos, Azurite) must go with it,
    /// not linger holding ports and cores.
    /// </summary>
    [Fact]
    public async Task A_sigterm_to_ckpt_ends_the_silos_and_the_azurite_it_started()
    {
        using var ckpt = CliRunner.Bench.Start("commits", "--runs", "2", "--ranks", "1", "--commits", "1000000", "--grain-state", "memory", "--store", "blob",
            "--silos", "1", "--warmup-seconds", "0", "--json");
        var timed = new TaskCompletionSource();
        ckpt.ErrorDataReceived += (_, e) => { if (e.Data?.Contains("[bench] timed:", StringComparison.Ordinal) == true) timed.TrySetResult(); };
        ckpt.OutputDataReceived += (_, _) => { };
        ckpt.BeginErrorReadLine();
        ckpt.BeginOutputReadLine();
        var started = new HashSet<int>();
        try
        {
            await timed.Task.WaitAsync(TimeSpan.FromMinutes(3));
            started = ProcessTree.Descendants(ckpt.Id);
            Assert.True(started.Count >= 2, $"expected a silo and Azurite below ckpt, found {started.Count} processes");

            using (var term = Process.Start("kill", ["-TERM", $"{ckpt.Id}"])!) await term.WaitForExitAsync();
            await ckpt.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            while (started.Any(ProcessTree.IsRunning) && DateTime.UtcNow < deadline) await Task.Delay(200);
            var left = started.Where(ProcessTree.IsRunning).ToList();
            Assert.True(left.Count == 0, $"still running after ckpt ended: {string.Join(", ", left)}");
        }
        finally
        {
            if (!ckpt.HasExited) ckpt.Kill(entireProcessTree: true);
            foreach (var pid in started.Where(ProcessTree.IsRunning)) // what a failed run left behind
            {
                try { Process.GetProcessById(pid).Kill(); }
                catch (ArgumentException) { } // ended meanwhile
            }
        }
    }
}
