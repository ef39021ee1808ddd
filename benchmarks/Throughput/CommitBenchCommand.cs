using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Lab;
using Checkpointing.Processes;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// <c>ckpt-bench commits</c>: the control plane under load (docs/cluster.md#control-plane-at-fleet-scale). Starts Azurite (when some
/// storage is blob) and a dev-mode cluster of silos, sets up N runs, then times N runs × W ranks × C
/// checkpoints through the agents' client path and reports throughput, commit latency, failures,
/// CPU of Azurite and the silos, and grain-state bytes written, all for the timed window only.
/// </summary>
public static class CommitBenchCommand
{
    public static Command Build(CliContext context)
    {
        var runs = CliOptions.Integer("--runs", "runs committing at once", 64, min: 1);
        var ranks = CliOptions.Integer("--ranks", "ranks per run", 2, min: 1);
        var commits = CliOptions.Integer("--commits", "checkpoints per run", 3, min: 1);
        var tensors = CliOptions.Integer("--tensors", "tensors per checkpoint", 4, min: 1);
        var grainState = CliOptions.Choice("--grain-state", "where run grains keep their state", "blob", "blob", "memory");
        var storeKind = CliOptions.Choice("--store", "where shards and manifests go", "blob", "blob", "memory");
        var silos = CliOptions.Integer("--silos", "silos in the dev cluster", 2, min: 1);
        var rate = CliOptions.OptionalInteger("--rate", "checkpoints begun per second, all runs together (default: as fast as they go)", min: 1);
        var commitTimeout = CliOptions.Integer("--commit-timeout", "seconds a rank waits for its commit", 600, min: 1);
        var warmUpSeconds = CliOptions.Integer("--warmup-seconds", "warm up for at most this many seconds, until JIT compilation settles (outside the timed window)", 60, min: 0);
        var maxSeconds = CliOptions.Integer("--max-seconds", "end the timed window after this many seconds (unfinished checkpoints are failures)", 600, min: 1);
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository (found from the working folder when not given)", "DIR");
        var siloDll = CliOptions.Text("--silo-dll", "the silo to start (default: the repository's build)", "FILE");
        var command = new Command("commits", "load on the control plane: N runs x W ranks each save C checkpoints concurrently through the agents' client path; " +
            "prints commits/s, commit latency p50/p90/p99/max, failures by type, Azurite and silo CPU seconds and grain-state bytes written (exit 1 on any failure)")
            .With(runs, ranks, commits, tensors, grainState, storeKind, silos, rate, commitTimeout, warmUpSeconds, maxSeconds, json, repo, siloDll);
        command.SetAction(parse =>
        {
            var root = parse.GetValue(repo) ?? RepositoryBuilds.FindRoot();
            var options = new CommitLoadOptions(
                Runs: (int)parse.GetValue(runs),
                Ranks: (int)parse.GetValue(ranks),
                Commits: (int)parse.GetValue(commits),
                Tensors: (int)parse.GetValue(tensors),
                CommitTimeout: TimeSpan.FromSeconds(parse.GetValue(commitTimeout)),
                Rate: parse.GetValue(rate));
            return RunAsync(options, new CommitBenchSetup(parse.GetValue(grainState) == "blob", parse.GetValue(storeKind) == "blob", (int)parse.GetValue(silos),
                TimeSpan.FromSeconds(parse.GetValue(warmUpSeconds)), parse.GetValue(maxSeconds), parse.GetValue(json), root, parse.GetValue(siloDll) ?? RepositoryBuilds.Sibling(root, "Silo", "Checkpointing.Silo.dll")), context);
        });
        return command;
    }

    private sealed record CommitBenchSetup(bool BlobGrainState, bool BlobStore, int Silos, TimeSpan WarmUpLimit, long MaxSeconds, bool Json, string Repo, string SiloDll);

    private static async Task<int> RunAsync(CommitLoadOptions options, CommitBenchSetup setup, CliContext context)
    {
        var (blobGrainState, blobStore, silos, warmUpLimit, maxSeconds, json, repo, siloDll) = setup;
        var say = (string line) => context.Error.WriteLine($"[bench] {line}");

        await using var azurite = blobGrainState || blobStore ? await StartAzuriteAsync(repo, say) : null;
        var azuritePid = azurite is null ? (int?)null : ProcessCpu.FindChild($"--blobPort {azurite.BlobPort} ");
        var key = RandomNumberGenerator.GetBytes(32);
        var settings = new Dictionary<string, string>
        {
            ["CKPT_Storage__GrainState"] = blobGrainState ? "AzureBlob" : "Memory",
            ["CKPT_Storage__Checkpoints"] = blobStore ? "AzureBlob" : "Memory",
            ["CKPT_Tenancy__SigningKey"] = Convert.ToBase64String(key),
        };
        if (azurite is not null) settings["CKPT_Storage__ConnectionString"] = azurite.ConnectionString;
        say($"starting {silos} silo(s): grain state {settings["CKPT_Storage__GrainState"]}, checkpoints {settings["CKPT_Storage__Checkpoints"]}");
        await using var fleet = await SiloFleet.StartAsync(siloDll, silos, settings);

        var token = TenantTokens.Issue(key, CommitLoad.Tenant, DateTimeOffset.UtcNow.AddHours(6));
        await using var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = fleet.Gateways, TenantToken = token });
        // Thousands of ranks share this one client process; an upload buffers only what it needs (up to a block), so tiny shards stay tiny.
        ICheckpointStore store = azurite is not null && blobStore
            ? AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints")
            : new MemoryStore();
        var load = new CommitLoad(connection.Client, store, options);
        say($"setup: creating {options.Runs} runs, starting their attempts, warming up");
        var setupClock = Stopwatch.StartNew();
        var warmUp = await load.SetupAsync(async () => (await fleet.StatsAsync()).JitMethods + System.Runtime.JitInfo.GetCompiledMethodCount(), warmUpLimit, CancellationToken.None);
        say($"setup took {setupClock.Elapsed.TotalSeconds:0.0} s, of which warm-up {warmUp.Took.TotalSeconds:0.0} s in {warmUp.Rounds} rounds " +
            (warmUp.Settled ? "(JIT compilation settled)" : "(JIT compilation still running: the window measures some of it)"));

        say($"timed: {options.Runs} runs x {options.Ranks} ranks x {options.Commits} checkpoints, {options.Tensors} tensors each");
        long done = 0;
        var before = await SnapshotAsync(fleet, azuritePid);
        var window = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
        var result = await CliProgress.RunAsync(context, "commits", (long)options.Runs * options.Commits, progress => load.RunAsync(failed =>
        {
            var n = Interlocked.Increment(ref done);
            progress.Update(n, $"checkpoints, {failed} failed, {window.Elapsed.TotalSeconds:0} s");
        }, deadline.Token));
        var after = await SnapshotAsync(fleet, azuritePid);

        say("verifying every run's catalog");
        var failures = new SortedDictionary<string, int>(result.FailuresByType.ToDictionary(), StringComparer.Ordinal);
        if (await load.CountWrongCatalogsAsync(CancellationToken.None) is > 0 and var wrong) failures["catalog"] = wrong;
        var summary = Summary(options, warmUp, result, failures, before, after);
        context.Out.WriteLine(json ? summary.ToJsonString() : Table(summary));
        var failed = failures.Values.Sum();
        if (failed == 0) return 0;
        if (!json) context.Error.WriteLine($"ckpt: bench: {failed} failure(s): {string.Join(", ", failures.Select(f => $"{f.Key} {f.Value}"))}");
        return CliFailure.FailureExitCode;
    }

    private static async Task<Azurite> StartAzuriteAsync(string repo, Action<string> say)
    {
        say("starting Azurite (127.0.0.1, in memory)");
        return await Azurite.StartAsync(repo);
    }

    private sealed record Snapshot(double? AzuriteCpu, double SiloCpu, double ClientCpu, SiloStats State);

    private static async Task<Snapshot> SnapshotAsync(SiloFleet fleet, int? azuritePid)
    {
        fleet.ThrowIfAnyExited();
        return new(azuritePid is { } pid ? ProcessCpu.Seconds(pid) : null, fleet.Pids.Sum(ProcessCpu.Seconds), ProcessCpu.Seconds(Environment.ProcessId), await fleet.StatsAsync());
    }

    private static JsonObject Summary(CommitLoadOptions options, CommitLoad.WarmUp warmUp, CommitLoadResult result, SortedDictionary<string, int> failures, Snapshot before, Snapshot after)
    {
        var latency = new LatencyStats(result.LatenciesMs);
        var seconds = result.Window.TotalSeconds;
        return new JsonObject
        {
            ["runs"] = options.Runs,
            ["ranks"] = options.Ranks,
            ["commits"] = latency.Count,
            ["commits_expected"] = options.Runs * options.Commits,
            ["tensors"] = options.Tensors,
            ["rate"] = options.Rate,
            ["window_s"] = Round(seconds),
            ["commits_per_s"] = Round(latency.Count / seconds),
            ["p50_ms"] = Round(latency.Percentile(50)),
            ["p90_ms"] = Round(latency.Percentile(90)),
            ["p99_ms"] = Round(latency.Percentile(99)),
            ["max_ms"] = Round(latency.Max),
            ["failed"] = failures.Values.Sum(),
            ["failures_by_type"] = new JsonObject(failures.Select(f => KeyValuePair.Create(f.Key, (JsonNode?)f.Value))),
            ["first_errors"] = new JsonObject(result.FirstErrors.Where(e => e.Value.Length > 0).OrderBy(e => e.Key, StringComparer.Ordinal)
                .Select(e => KeyValuePair.Create(e.Key, (JsonNode?)e.Value))),
            ["state_writes"] = after.State.StateWrites - before.State.StateWrites,
            ["state_bytes_written"] = after.State.StateBytesWritten - before.State.StateBytesWritten,
            ["azurite_cpu_s"] = Round(after.AzuriteCpu - before.AzuriteCpu),
            ["silo_cpu_s"] = Round(after.SiloCpu - before.SiloCpu),
            ["client_cpu_s"] = Round(after.ClientCpu - before.ClientCpu),
            ["warmup_s"] = Round(warmUp.Took.TotalSeconds),
            ["warmup_settled"] = warmUp.Settled,
        };
    }

    private static double? Round(double? value) => value is { } v ? Math.Round(v, 3) : null;

    private static string Table(JsonObject s)
    {
        string V(string name) => s[name] is { } node ? node.ToJsonString() : "-";
        var failures = s["failures_by_type"]!.AsObject();
        List<string> lines =
        [
            $"commits    {V("commits")} of {V("commits_expected")} in {V("window_s")} s: {V("commits_per_s")} commits/s ({V("runs")} runs x {V("ranks")} ranks)",
            $"latency    p50 {V("p50_ms")} ms, p90 {V("p90_ms")} ms, p99 {V("p99_ms")} ms, max {V("max_ms")} ms (first Begin to last rank's ack)",
            $"failures   {V("failed")}{(failures.Count > 0 ? " (" + string.Join(", ", failures.Select(f => $"{f.Key} {f.Value}")) + ")" : "")}",
            $"cpu        azurite {V("azurite_cpu_s")} s, silos {V("silo_cpu_s")} s, bench client {V("client_cpu_s")} s",
            $"grain      {V("state_writes")} state writes, {V("state_bytes_written")} bytes",
            .. s["first_errors"]!.AsObject().Select(e => $"first {e.Key}: {e.Value}"),
        ];
        return string.Join('\n', lines);
    }
}
