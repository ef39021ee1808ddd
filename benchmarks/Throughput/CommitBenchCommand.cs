using System.CommandLine;
using System.Diagnostics;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Azure.Storage.Blobs;
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
        var heartbeatPairs = CliOptions.Integer("--heartbeat-ab", "also measure heartbeats' cost: this many pairs of windows without and with every rank heartbeating, in the order ABBA… (0: one window, no heartbeats)", 0, min: 0);
        var heartbeatMs = CliOptions.Integer("--heartbeat-ms", "the interval of each rank's heartbeat in the windows with heartbeats (agents' default: 5000)", 5000, min: 10);
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository (found from the working folder when not given)", "DIR");
        var siloDll = CliOptions.Text("--silo-dll", "the silo to start (default: the repository's build)", "FILE");
        var command = new Command("commits", "load on the control plane: N runs x W ranks each save C checkpoints concurrently through the agents' client path; " +
            "prints commits/s, commit latency p50/p90/p99/max, failures by type, Azurite and silo CPU seconds and grain-state bytes written (exit 1 on any failure)")
            .With(runs, ranks, commits, tensors, grainState, storeKind, silos, rate, commitTimeout, warmUpSeconds, maxSeconds, heartbeatPairs, heartbeatMs, json, repo, siloDll);
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
                TimeSpan.FromSeconds(parse.GetValue(warmUpSeconds)), parse.GetValue(maxSeconds), (int)parse.GetValue(heartbeatPairs), TimeSpan.FromMilliseconds(parse.GetValue(heartbeatMs)),
                parse.GetValue(json), root, parse.GetValue(siloDll) ?? RepositoryBuilds.Sibling(root, "Silo", "Checkpointing.Silo.dll")), context);
        });
        return command;
    }

    private sealed record CommitBenchSetup(bool BlobGrainState, bool BlobStore, int Silos, TimeSpan WarmUpLimit, long MaxSeconds, int HeartbeatPairs, TimeSpan HeartbeatInterval,
        bool Json, string Repo, string SiloDll);

    private static async Task<int> RunAsync(CommitLoadOptions options, CommitBenchSetup setup, CliContext context)
    {
        var (blobGrainState, blobStore, silos, warmUpLimit, maxSeconds, heartbeatPairs, heartbeatInterval, json, repo, siloDll) = setup;
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
        var clientRequests = new StorageRequestCounts(); // the ranks' shard uploads: the other half of what a commit costs the storage
        ICheckpointStore store = azurite is not null && blobStore
            ? new AzureBlobStore(new BlobServiceClient(azurite.ConnectionString, clientRequests.Attach(AzureBlobStore.CreateClientOptions())).GetBlobContainerClient("checkpoints"))
            : new MemoryStore();
        var load = new CommitLoad(connection.Client, store, options);
        say($"setup: creating {options.Runs} runs, starting their attempts, warming up");
        var setupClock = Stopwatch.StartNew();
        var warmUp = await load.SetupAsync(async () => (await fleet.StatsAsync()).JitMethods + System.Runtime.JitInfo.GetCompiledMethodCount(), warmUpLimit, CancellationToken.None);
        say($"setup took {setupClock.Elapsed.TotalSeconds:0.0} s, of which warm-up {warmUp.Took.TotalSeconds:0.0} s in {warmUp.Rounds} rounds " +
            (warmUp.Settled ? "(JIT compilation settled)" : "(JIT compilation still running: the window measures some of it)"));

        // One window; or pairs of windows without and with heartbeats (A/B in the same run, so the same warm silos), in the order
        // ABBA ABBA…: each window's runs hold more checkpoints than the last one's, and a fixed order would charge that drift to B.
        var windows = heartbeatPairs == 0 ? [false] : Enumerable.Range(0, heartbeatPairs).SelectMany(pair => pair % 2 == 0 ? new[] { false, true } : [true, false]).ToArray();
        say($"timed: {options.Runs} runs x {options.Ranks} ranks x {options.Commits} checkpoints, {options.Tensors} tensors each" +
            (heartbeatPairs > 0 ? $", in {windows.Length} windows alternating without and with heartbeats every {heartbeatInterval.TotalMilliseconds:0} ms" : ""));
        long done = 0;
        var before = await SnapshotAsync(fleet, azuritePid, clientRequests);
        var window = Stopwatch.StartNew();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(maxSeconds));
        var results = new List<(bool Heartbeats, CommitLoadResult Result, long Beats, long BeatsFailed)>();
        await CliProgress.RunAsync(context, "commits", (long)options.Runs * options.Commits * windows.Length, async progress =>
        {
            foreach (var (heartbeats, index) in windows.Select((h, i) => (h, i)))
            {
                var beats = heartbeats ? new HeartbeatLoad(connection.Client, options.Runs, options.Ranks, load.Epochs, heartbeatInterval) : null;
                using var stopBeats = new CancellationTokenSource();
                var beating = beats?.RunAsync(stopBeats.Token) ?? Task.CompletedTask;
                var result = await load.RunAsync(failed =>
                {
                    var n = Interlocked.Increment(ref done);
                    progress.Update(n, $"checkpoints, {failed} failed, {window.Elapsed.TotalSeconds:0} s");
                }, deadline.Token, firstIteration: index * options.Commits);
                await stopBeats.CancelAsync();
                await beating;
                results.Add((heartbeats, result, beats?.Sent ?? 0, beats?.Failed ?? 0));
            }
            return 0;
        });
        var after = await SnapshotAsync(fleet, azuritePid, clientRequests);
        var all = new CommitLoadResult(
            TimeSpan.FromTicks(results.Sum(r => r.Result.Window.Ticks)),
            results.SelectMany(r => r.Result.LatenciesMs).ToList(),
            results.SelectMany(r => r.Result.FailuresByType).GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.Sum(f => f.Value)),
            results.SelectMany(r => r.Result.FirstErrors).GroupBy(f => f.Key).ToDictionary(g => g.Key, g => g.First().Value));

        say("verifying every run's catalog");
        var failures = new SortedDictionary<string, int>(all.FailuresByType.ToDictionary(), StringComparer.Ordinal);
        if (await load.CountWrongCatalogsAsync(windows.Length, CancellationToken.None) is > 0 and var wrong) failures["catalog"] = wrong;
        var summary = Summary(options with { Commits = options.Commits * windows.Length }, warmUp, all, failures, before, after);
        if (heartbeatPairs > 0) summary["heartbeat_ab"] = HeartbeatComparison(results, heartbeatInterval);
        var requests = after.StorageRequests - before.StorageRequests;
        var commitCount = all.LatenciesMs.Count;
        if (commitCount > 0 && requests.Total > 0)
        {
            summary["requests_per_commit"] = PerCommit(requests, commitCount);
            if (azurite is not null && blobGrainState && blobStore)
            {
                say("measuring the storage's own capacity for the same request mix (Azure SDK alone)");
                var capacity = await new StorageCapacity(azurite.ConnectionString).CommitsPerSecondAsync(requests, commitCount, Math.Min(commitCount, 2000), options.Runs, CancellationToken.None);
                summary["storage_capacity_commits_per_s"] = Round(capacity);
                summary["storage_capacity_ratio"] = Round(commitCount / all.Window.TotalSeconds / capacity);
            }
        }
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

    private sealed record Snapshot(double? AzuriteCpu, double SiloCpu, double ClientCpu, SiloStats State, RequestCounts ClientRequests)
    {
        public RequestCounts StorageRequests => State.StorageRequests + ClientRequests;
    }

    private static async Task<Snapshot> SnapshotAsync(SiloFleet fleet, int? azuritePid, StorageRequestCounts clientRequests)
    {
        fleet.ThrowIfAnyExited();
        return new(azuritePid is { } pid ? ProcessCpu.Seconds(pid) : null, fleet.Pids.Sum(ProcessCpu.Seconds), ProcessCpu.Seconds(Environment.ProcessId), await fleet.StatsAsync(),
            RequestCounts.Of(clientRequests));
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

    /// <summary>
    /// Commits/s and p50 of each window without and with heartbeats, in the order each kind ran, and the ratio of their medians
    /// (with / without: 1.0 = heartbeats cost nothing measurable).
    /// </summary>
    private static JsonObject HeartbeatComparison(List<(bool Heartbeats, CommitLoadResult Result, long Beats, long BeatsFailed)> results, TimeSpan interval)
    {
        double Rate(CommitLoadResult r) => Math.Round(r.LatenciesMs.Count / r.Window.TotalSeconds, 3);
        JsonArray Rates(bool heartbeats) => new(results.Where(r => r.Heartbeats == heartbeats).Select(r => (JsonNode?)Rate(r.Result)).ToArray());
        JsonArray Medians(bool heartbeats) => new(results.Where(r => r.Heartbeats == heartbeats).Select(r => (JsonNode?)Round(new LatencyStats(r.Result.LatenciesMs).Percentile(50))).ToArray());
        double Median(bool heartbeats) => results.Where(r => r.Heartbeats == heartbeats).Select(r => Rate(r.Result)).Order().ToList() is var rates && rates.Count > 0 ? rates[rates.Count / 2] : double.NaN;
        return new JsonObject
        {
            ["interval_ms"] = interval.TotalMilliseconds,
            ["off_commits_per_s"] = Rates(false),
            ["on_commits_per_s"] = Rates(true),
            ["off_p50_ms"] = Medians(false),
            ["on_p50_ms"] = Medians(true),
            ["on_over_off"] = Round(Median(true) / Median(false)),
            ["heartbeats_sent"] = results.Sum(r => r.Beats),
            ["heartbeats_failed"] = results.Sum(r => r.BeatsFailed),
        };
    }

    /// <summary>Storage requests per commit by method (ranks' and silos' together), and the average PUT body.</summary>
    private static JsonObject PerCommit(RequestCounts requests, int commits) => new()
    {
        ["put"] = Round((double)requests.Put / commits),
        ["get"] = Round((double)requests.Get / commits),
        ["head"] = Round((double)requests.Head / commits),
        ["delete"] = Round((double)requests.Delete / commits),
        ["other"] = Round((double)requests.Other / commits),
        ["total"] = Round((double)requests.Total / commits),
        ["put_bytes_avg"] = requests.Put == 0 ? 0 : Round((double)requests.PutBytes / requests.Put),
    };

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
            .. s["requests_per_commit"] is JsonObject perCommit
                ? [$"storage    {perCommit["total"]} requests per commit ({string.Join(", ", perCommit.Where(p => p.Key is not "total" and not "put_bytes_avg").Select(p => $"{p.Value} {p.Key}"))}; PUTs of {perCommit["put_bytes_avg"]} bytes on average)"]
                : Array.Empty<string>(),
            .. s["storage_capacity_ratio"] is { } ratio
                ? [$"capacity   the storage alone serves {V("storage_capacity_commits_per_s")} commits/s of the same requests: commits/s is {ratio} of it"]
                : Array.Empty<string>(),
            .. s["heartbeat_ab"] is JsonObject ab
                ? [$"heartbeats commits/s without {ab["off_commits_per_s"]!.ToJsonString()}, with {ab["on_commits_per_s"]!.ToJsonString()} (every {ab["interval_ms"]} ms, {ab["heartbeats_sent"]} sent): with/without {ab["on_over_off"]}"]
                : Array.Empty<string>(),
            .. s["first_errors"]!.AsObject().Select(e => $"first {e.Key}: {e.Value}"),
        ];
        return string.Join('\n', lines);
    }
}
