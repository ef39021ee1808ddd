using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// <c>ckpt-lab chaos</c> (issue 14): a cluster of hosts made of network namespaces on this machine (Azurite
/// with its data on disk, three silos in cluster mode, the agents), N runs × W ranks checkpointing for
/// M minutes while faults strike at times drawn from the seed, then the invariant checker.
/// </summary>
public static class ChaosCommand
{
    public static Command Build(CliContext context)
    {
        var minutes = new Option<double>("--minutes") { Description = "how long faults strike (the checks come after)", HelpName = "M", DefaultValueFactory = _ => 2 };
        minutes.Validators.Add(r => { if (r.GetValueOrDefault<double>() is <= 0 or > 600) r.AddError("--minutes must be above 0 and at most 600"); });
        var runs = CliOptions.Integer("--runs", "training runs", 3, min: 1);
        var ranks = CliOptions.Integer("--ranks", "ranks (agent processes) per run", 2, min: 1);
        var seed = CliOptions.OptionalInteger("--seed", "seed of the fault schedule (default: random, printed)", min: 0);
        var faults = CliOptions.Subset("--faults", "the kinds of fault to strike, comma-separated (default: all)", string.Join(',', ChaosSession.FaultKinds), ChaosSession.FaultKinds,
            _ => $"--faults takes {string.Join(", ", ChaosSession.FaultKinds)}");
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository (found from the working folder when not given)", "DIR");
        var siloDll = CliOptions.Text("--silo-dll", "the silo to start (default: the repository's build)", "FILE");
        var memoryPeriod = CliOptions.OptionalInteger("--memory-period", "runs take a memory-tier checkpoint every M iterations on per-host holders (docs/memory-tier.md); adds the holder_kill fault", min: 1);
        var quota = CliOptions.OptionalInteger("--quota-bytes", "the tenant's retained-bytes limit, small enough to bind: commits are refused at times, and the checker reads from storage that the tenant never holds more", min: 1);
        var command = new Command("chaos", "a multi-host cluster in network namespaces under faults (silo kills, partitions, slow links, storage restarts, agent kills), " +
            "then the invariant checker; needs root; exit 0 only when nothing was lost").With(minutes, runs, ranks, seed, faults, json, repo, siloDll, quota, memoryPeriod);
        command.SetAction(parse =>
        {
            var root = parse.GetValue(repo) ?? RepositoryBuilds.FindRoot();
            var options = new ChaosOptions(parse.GetValue(minutes), (int)parse.GetValue(runs), (int)parse.GetValue(ranks),
                (int)(parse.GetValue(seed) ?? RandomNumberGenerator.GetInt32(int.MaxValue)), parse.GetValue(faults)!, root,
                parse.GetValue(siloDll) ?? RepositoryBuilds.Sibling(root, "Silo", "Checkpointing.Silo.dll"), parse.GetValue(quota), (int?)parse.GetValue(memoryPeriod));
            return RunAsync(options, parse.GetValue(json), context);
        });
        return command;
    }

    private static async Task<int> RunAsync(ChaosOptions o, bool json, CliContext context)
    {
        var say = (string line) => context.Error.WriteLine($"[chaos] {DateTime.UtcNow:HH:mm:ss} {line}");
        say($"seed {o.Seed}: {o.Runs} runs x {o.Ranks} ranks for {o.Minutes} min");
        var data = Directory.CreateTempSubdirectory("ckpt-chaos-");
        try
        {
            await using var lab = await NetworkLab.CreateAsync(["storage", "silo0", "silo1", "silo2", "agents"], say);
            var key = RandomNumberGenerator.GetBytes(32);
            var clusterId = $"chaos-{lab.Id}";
            await using var cluster = await ChaosCluster.StartAsync(o.Repo, o.SiloDll, data.FullName, lab["storage"], [lab["silo0"], lab["silo1"], lab["silo2"]],
                clusterId, Convert.ToBase64String(key), say);
            var operatorToken = TenantTokens.Issue(key, TenantTokens.OperatorTenant, DateTimeOffset.UtcNow.AddHours(12));
            await using var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = cluster.Gateways, ClusterId = clusterId, TenantToken = operatorToken });
            var store = AzureBlobStore.FromConnectionString(cluster.ConnectionString, "checkpoints");
            var session = new ChaosSession(o, lab, cluster, connection.Client, store, key, clusterId, say);
            var findings = await session.RunAsync();

            var summary = new JsonObject
            {
                ["minutes"] = o.Minutes,
                ["runs"] = o.Runs,
                ["ranks"] = o.Ranks,
                ["seed"] = o.Seed,
                ["commits"] = session.Commits,
                ["faults"] = new JsonObject(ChaosSession.FaultKinds.Select(k => KeyValuePair.Create(k, (JsonNode?)session.Faults.GetValueOrDefault(k)))),
                ["netem_substitute"] = "tbf",
                ["attempts"] = session.Attempts,
                ["silo_restarts"] = session.SiloRestarts,
                ["restarts_by_cause"] = new JsonObject(session.RestartsByCause.OrderBy(c => c.Key, StringComparer.Ordinal).Select(c => KeyValuePair.Create(c.Key, (JsonNode?)c.Value))),
                ["partition_resumes"] = new JsonArray(session.PartitionResumes.Select(r => (JsonNode?)new JsonObject { ["run"] = r.Run, ["seconds"] = r.Seconds }).ToArray()),
                ["archived_catalogs"] = session.ArchivedCatalogs,
                ["quota_bytes"] = o.QuotaBytes,
                ["stored_bytes"] = session.StoredBytes,
                ["quota_violations"] = findings.QuotaViolations,
                ["memory_period"] = o.MemoryPeriod,
                ["memory_resumes"] = session.MemoryResumes,
                ["memory_fallbacks"] = session.MemoryFallbacks,
                ["incomplete_memory_resumes"] = findings.IncompleteMemoryResumes,
                ["memory_regressions"] = findings.MemoryRegressions,
                ["holders"] = session.HolderStats,
                ["agent_rss_max_mib"] = session.AgentRssMaxMib,
                ["lost_commits"] = findings.LostCommits,
                ["tag_regressions"] = findings.TagRegressions,
                ["double_commits"] = findings.DoubleCommits,
                ["orphan_blobs"] = findings.OrphanBlobs,
                ["unresumable_runs"] = findings.UnresumableRuns,
                ["errors"] = findings.Errors,
                ["findings"] = new JsonArray(findings.Details.Take(50).Select(d => (JsonNode?)d).ToArray()),
            };
            var trouble = findings.QuotaViolations + findings.IncompleteMemoryResumes + findings.MemoryRegressions + findings.LostCommits + findings.TagRegressions + findings.DoubleCommits + findings.OrphanBlobs + findings.UnresumableRuns + findings.Errors;
            context.Out.WriteLine(json ? summary.ToJsonString() : Table(summary));
            return trouble == 0 ? 0 : CliFailure.FailureExitCode;
        }
        finally
        {
            data.Delete(recursive: true);
        }
    }

    private static string Table(JsonObject s)
    {
        var faults = s["faults"]!.AsObject();
        var lines = new List<string>
        {
            $"chaos: {s["minutes"]} min, {s["runs"]} runs x {s["ranks"]} ranks, seed {s["seed"]}",
            $"commits acknowledged   {s["commits"]}",
            $"faults                 {string.Join(", ", faults.Select(f => $"{f.Key} {f.Value}"))} (netem: tbf, see README)",
            $"attempts, silo restarts {s["attempts"]}, {s["silo_restarts"]}",
            $"archived catalogs      {s["archived_catalogs"]}",
        };
        if (s["memory_period"] is not null) lines.Add($"memory tier            resumes {s["memory_resumes"]}, fallbacks {s["memory_fallbacks"]}, holders {s["holders"]?.ToJsonString()}");
        foreach (var k in new[] { "lost_commits", "tag_regressions", "double_commits", "orphan_blobs", "unresumable_runs", "incomplete_memory_resumes", "memory_regressions", "errors" }) lines.Add($"{k,-22} {s[k]}");
        lines.AddRange(s["findings"]!.AsArray().Select(f => "  " + (string)f!));
        return string.Join('\n', lines);
    }
}

/// <param name="QuotaBytes">The tenant's retained-bytes limit; small enough to bind, commits are refused at times and every run keeps at most 3 checkpoints.</param>
/// <param name="MemoryPeriod">The runs' memory period; null: durable checkpoints only (and no holder_kill fault).</param>
internal sealed record ChaosOptions(double Minutes, int Runs, int Ranks, int Seed, IReadOnlyList<string> Faults, string Repo, string SiloDll, long? QuotaBytes = null,
    int? MemoryPeriod = null);
