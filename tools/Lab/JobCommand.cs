using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Processes;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Lab;

/// <summary>
/// <c>ckpt-lab job</c>: the main job end to end on one machine. Starts Azurite and a silo, creates a
/// run, launches N agent processes that checkpoint into Azurite blobs under the run grain, SIGKILLs
/// one agent mid-run (the job then restarts all ranks, as a data-parallel job must), resumes from the
/// grain's last checkpoint, trains to model_final and prints the run's catalog.
/// </summary>
public static class JobCommand
{
    public static Command Build(CliContext context)
    {
        var agents = CliOptions.Integer("--agents", "training ranks, one process each", 2, min: 1);
        var iterations = CliOptions.Integer("--iters", "iterations to train", 120, min: 2);
        var period = CliOptions.Integer("--period", "save every P iterations", 20, min: 1);
        var maxToKeep = CliOptions.Integer("--max-to-keep", "keep only the K newest periodic checkpoints", 3, min: 1);
        var killAt = CliOptions.OptionalInteger("--kill-at", "SIGKILL an agent at iteration N (default: half way)", min: 1);
        var width = CliOptions.Integer("--width", "hidden width of the model", 64, min: 1);
        var sharded = CliOptions.Flag("--sharded", "a tensor-parallel model: each agent holds, saves and loads only its slices");
        var resumeAgents = CliOptions.OptionalInteger("--resume-agents", "agents after the kill (default: --agents); the checkpoint is resharded to them", min: 1);
        var memoryPeriod = CliOptions.OptionalInteger("--memory-period",
            "take a memory-tier checkpoint every M iterations on per-host holders (docs/memory-tier.md); the kill then takes the victim's host, holder included", min: 1);
        var processOnly = CliOptions.Flag("--process-only", "with --memory-period: the kill takes only the agent process; its host and holder live on");
        var compareDurable = CliOptions.Flag("--compare-durable", "with --memory-period: run the same job again with durable checkpoints only and compare the recoveries");
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository (found from the working folder when not given)", "DIR");
        var siloDll = CliOptions.Text("--silo-dll", "the silo to start (default: the repository's build)", "FILE");
        var command = new Command("job", "the main job on this machine: Azurite, a silo, N agents checkpointing into blobs; one agent is SIGKILLed, the job resumes")
            .With(agents, iterations, period, maxToKeep, killAt, width, sharded, resumeAgents, memoryPeriod, processOnly, compareDurable, json, repo, siloDll);
        command.SetAction(parse =>
        {
            var root = parse.GetValue(repo) ?? RepositoryBuilds.FindRoot();
            var iters = parse.GetValue(iterations);
            var count = (int)parse.GetValue(agents);
            var memory = (int?)parse.GetValue(memoryPeriod);
            if (parse.GetValue(compareDurable) && memory is null) throw new UsageException("--compare-durable needs --memory-period", "ckpt-lab job");
            return RunAsync(new JobOptions(count, (int)(parse.GetValue(resumeAgents) ?? count), iters, (int)parse.GetValue(period), (int)parse.GetValue(maxToKeep),
                parse.GetValue(killAt) ?? iters / 2, (int)parse.GetValue(width), parse.GetValue(sharded), memory, parse.GetValue(processOnly), parse.GetValue(compareDurable), parse.GetValue(json), root,
                parse.GetValue(siloDll) ?? RepositoryBuilds.Sibling(root, "Silo", "Checkpointing.Silo.dll")), context);
        });
        return command;
    }

    private sealed record JobOptions(int Agents, int ResumeAgents, long Iterations, int Period, int MaxToKeep, long KillAt, int Width, bool Sharded, int? MemoryPeriod,
        bool ProcessOnly, bool CompareDurable, bool Json, string Repo, string SiloDll);

    /// <summary>The agents' seed (their default): the uninterrupted reference trains from the same one.</summary>
    private const long Seed = 1;

    private static async Task<int> RunAsync(JobOptions o, CliContext context)
    {
        if (o.KillAt >= o.Iterations) throw new UsageException("--kill-at must be below --iters", "ckpt-lab job");
        if (o.MemoryPeriod is not null && o.ResumeAgents != o.Agents) throw new UsageException("--memory-period keeps the world size: the memory tier does not reshard (leave out --resume-agents)", "ckpt-lab job");
        var say = (string line) => context.Error.WriteLine($"[job] {line}");

        say("starting Azurite (127.0.0.1, in memory)");
        await using var azurite = await Azurite.StartAsync(o.Repo);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var (siloPort, gatewayPort, healthPort) = (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
        say($"starting a silo (gateway 127.0.0.1:{gatewayPort}, readiness http://127.0.0.1:{healthPort}/readyz)");
        await using var silo = ChildProcess.Start("dotnet", [o.SiloDll], new Dictionary<string, string>
        {
            ["CKPT_Silo__Mode"] = "Dev",
            ["CKPT_Silo__SiloPort"] = $"{siloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{gatewayPort}",
            ["CKPT_Silo__HealthPort"] = $"{healthPort}",
            ["CKPT_Storage__ConnectionString"] = azurite.ConnectionString,
            ["CKPT_Tenancy__SigningKey"] = key,
        });
        await silo.WaitReadyAsync(healthPort);
        var token = TenantTokens.Issue(Convert.FromBase64String(key), "demo", DateTimeOffset.UtcNow.AddHours(6));
        await using var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = [$"127.0.0.1:{gatewayPort}"], TenantToken = token });
        var cluster = new JobCluster(azurite, connection, token, gatewayPort, o.Repo, say);

        var (summary, passed) = await RunJobAsync(o, cluster, "", context);
        if (o.CompareDurable)
        {
            say("the same job again with durable checkpoints only");
            var (durable, durablePassed) = await RunJobAsync(o with { MemoryPeriod = null }, cluster, "-durable", context);
            summary["durable_only"] = new JsonObject
            {
                ["run"] = durable["run"]!.DeepClone(), ["recovered_from"] = durable["recovered_from"]!.DeepClone(), ["lost_iterations"] = durable["lost_iterations"]!.DeepClone(),
                ["recovery_seconds"] = durable["recovery_seconds"]!.DeepClone(), ["first_step_seconds"] = durable["first_step_seconds"]!.DeepClone(),
                ["resume_seconds"] = durable["resume_seconds"]!.DeepClone(), ["resumed_from"] = durable["resumed_from"]?.DeepClone(),
                ["weights_equal_to_uninterrupted"] = durable["weights_equal_to_uninterrupted"]!.DeepClone(),
            };
            summary["recovery_speedup"] = Math.Round((double)durable["recovery_seconds"]! / (double)summary["recovery_seconds"]!, 2);
            summary["resume_speedup"] = Math.Round((double)durable["resume_seconds"]! / (double)summary["resume_seconds"]!, 2);
            passed &= durablePassed;
        }
        summary["silo_metrics"] = await SiloMetricsScrape.CountersAsync(healthPort);
        await silo.StopAsync(TimeSpan.FromSeconds(20));
        context.Out.WriteLine(o.Json ? summary.ToJsonString()
            : $"job {summary["run"]}: resumed from {summary["resumed_from"]} ({summary["recovered_from"]}) at iteration {summary["start_iter"]}; last checkpoint {summary["last"]}");
        return passed ? 0 : 1;
    }

    /// <summary>What every job of one <c>ckpt-lab job</c> shares: storage, the silo, the client and the tenant's token.</summary>
    private sealed record JobCluster(Azurite Azurite, ClusterConnection Connection, string Token, int GatewayPort, string Repo, Action<string> Say);

    /// <summary>
    /// One job: a run, N agents (and with a memory period, one holder per agent's "host"), a SIGKILL of the last agent at the
    /// kill point (and of its holder: the host is lost), a restart of every rank (the lost host's holder replaced by an empty
    /// one), and a check of the final weights against an uninterrupted training. Returns its summary and whether it passed.
    /// </summary>
    private static async Task<(JsonObject Summary, bool Passed)> RunJobAsync(JobOptions o, JobCluster cluster, string suffix, CliContext context)
    {
        var (agents, resumeAgents, iterations, period, maxToKeep, killAt, width, sharded, memoryPeriod, processOnly, _, _, _, _) = o;
        var hostLost = memoryPeriod is not null && !processOnly;
        var say = cluster.Say;
        var run = new RunId("demo", $"job-{DateTime.UtcNow:yyyyMMdd-HHmmss}{suffix}");
        var grain = cluster.Connection.Run(run);
        await grain.Create(new PeriodicPolicy(period, iterations, maxToKeep, MemoryPeriod: memoryPeriod));
        say($"run {run}: period {period}, max_iter {iterations}, max_to_keep {maxToKeep}{(memoryPeriod is { } m ? $", memory_period {m}" : "")}, {agents} {(sharded ? "tensor-parallel " : "")}agents, {resumeAgents} after the kill");

        await using var holders = new JobHolders(cluster.Repo, cluster.Token);
        if (memoryPeriod is not null)
        {
            for (var rank = 0; rank < agents; rank++) await holders.StartAsync(rank, $"host-{rank}");
            say($"holders: {string.Join(", ", holders.Current.Select(h => $"{h.Host} {h.Endpoint}"))}");
        }
        var agentArgs = new Func<int, int, long, long?, string[]>((rank, world, epoch, holdAt) =>
        [
            typeof(JobCommand).Assembly.Location, "agent", "--run", run.Key, "--rank", $"{rank}", "--world-size", $"{world}", "--epoch", $"{epoch}",
            "--width", $"{width}", "--seed", $"{Seed}", "--silo", $"127.0.0.1:{cluster.GatewayPort}",
            .. holdAt is { } h ? new[] { "--hold-at", $"{h}" } : [],
            .. sharded ? new[] { "--sharded" } : [],
            // The demo's ranks share no collective that keeps them in step: on a loaded machine one may start a minute after the
            // other. A long wait for the others' memory reports absorbs that skew at the first memory checkpoint, as a job's first
            // all-reduce would; afterwards each memory checkpoint keeps the ranks within a period of each other.
            .. memoryPeriod is not null ? new[] { "--holder", holders.Current[rank].Endpoint, "--holder-host", holders.Current[rank].Host, "--memory-commit-wait", "180" } : [],
        ]);
        // Secrets go to the agents through their environment: a command line is readable by every user (/proc/PID/cmdline).
        var agentSecrets = new Dictionary<string, string> { [ClusterOptions.TokenVariable] = cluster.Token, [ClusterOptions.StorageVariable] = cluster.Azurite.ConnectionString };
        var killedRank = agents - 1;
        var (first, lastBeforeKill, memoryBeforeKill, second) = await CliProgress.RunAsync(context, "job", iterations, async progress =>
        {
            // Attempt 1: train until the kill point, then SIGKILL the last rank (and its host's holder); the job restarts all ranks.
            var epoch1 = await grain.StartAttempt();
            var first = await RunAgentsAsync(agents, rank => ChildProcess.Start("dotnet", agentArgs(rank, agents, epoch1, rank == agents - 1 ? killAt : null), agentSecrets), progress,
                killAtIteration: killAt, onKill: hostLost ? () => holders.KillAsync(killedRank) : null);
            progress.Log($"[job] SIGKILLed agent rank {killedRank} (pid {first.KilledPid}){(hostLost ? " and its host's holder" : "")} at iteration {killAt}; the job restarts");
            var view = await grain.Get();
            if (hostLost) await holders.StartAsync(killedRank, $"host-{killedRank}-replaced");

            // Attempt 2: a new epoch fences anything the dead attempt might still send; every rank resumes from the newest complete tier
            // (the durable tag resharded when the job comes back with another number of agents).
            var epoch2 = await grain.StartAttempt();
            var second = await RunAgentsAsync(resumeAgents, rank => ChildProcess.Start("dotnet", agentArgs(rank, resumeAgents, epoch2, null), agentSecrets), progress, killAtIteration: null);
            return (first, view.LastCheckpoint, view.MemoryCheckpoint?.Name, second);
        });

        var final = await grain.Get();
        RunCommands.Print(context.Error, false, final);
        say("training an uninterrupted reference in this process to compare the final weights");
        var sameWeights = await FinalWeightsEqualUninterruptedAsync(AzureBlobStore.FromConnectionString(cluster.Azurite.ConnectionString, StoreOptions.DefaultContainer), final, sharded, width, iterations);
        var history = await grain.GetHistory();
        var summary = new JsonObject
        {
            ["run"] = run.Key,
            ["agents"] = agents,
            ["resume_agents"] = resumeAgents,
            ["sharded"] = sharded,
            ["memory_period"] = memoryPeriod,
            ["host_lost"] = hostLost,
            ["attempts"] = 2,
            ["killed_rank"] = killedRank,
            ["killed_at_iteration"] = first.LastIteration,
            ["last_before_kill"] = lastBeforeKill,
            ["memory_before_kill"] = memoryBeforeKill,
            ["resumed_from"] = second.ResumedFrom,
            ["recovered_from"] = second.Tier,
            ["recovery_reason"] = second.Reason,
            ["start_iter"] = second.StartIteration,
            // Iterations the kill cost: trained before it, trained again after it.
            ["lost_iterations"] = killAt - second.StartIteration,
            // From launching the new attempt's processes until every rank has resumed and steps (first_step_seconds: until every
            // rank finished that step, whose compute is the same for either tier); resume_seconds is the slowest rank's resume alone.
            ["recovery_seconds"] = Math.Round(second.SecondsToResumed, 3),
            ["first_step_seconds"] = Math.Round(second.SecondsToFirstStep, 3),
            ["resume_seconds"] = Math.Round(second.ResumeSeconds, 3),
            ["loss_before_kill"] = first.LastLoss,
            ["loss_after_resume"] = second.FirstLoss,
            // The same iteration's loss in the killed attempt: a resume that continues exactly reproduces it.
            ["first_attempt_loss_at_start_iter"] = first.Losses.TryGetValue(second.StartIteration, out var same) ? same : null,
            ["weights_equal_to_uninterrupted"] = sameWeights,
            ["bytes_read_per_rank"] = sharded ? new JsonArray(second.BytesRead.Select(b => (JsonNode?)b).ToArray()) : null,
            ["bytes_needed_per_rank"] = sharded ? new JsonArray(second.BytesNeeded.Select(b => (JsonNode?)b).ToArray()) : null,
            ["saved"] = new JsonArray(first.Saved.Concat(second.Saved).Select(s => (JsonNode?)s).ToArray()),
            // Per attempt: what the ranks were told committed before the kill, and after the restart.
            ["memory_committed"] = new JsonArray(new JsonArray(first.MemoryCommitted.Distinct().Select(s => (JsonNode?)s).ToArray()),
                new JsonArray(second.MemoryCommitted.Distinct().Select(s => (JsonNode?)s).ToArray())),
            ["holders"] = memoryPeriod is null ? null : await holders.StatsAsync(),
            ["last"] = final.LastCheckpoint,
            ["catalog"] = RunJson.Of(final)["checkpoints"]!.DeepClone(),
            ["memory_checkpoint"] = RunJson.Of(final)["memory_checkpoint"]?.DeepClone(),
            ["history"] = RunJson.Of(run, history)["history"]!.DeepClone(),
        };
        return (summary, final.LastCheckpoint == new PeriodicPolicy(period, iterations).FinalName && sameWeights);
    }

    /// <summary>
    /// Whether the run's last checkpoint (consolidated: sharded tensors assembled from every rank's slices) holds, bit for bit,
    /// the model one process trains from the same seed without interruption, split or kill.
    /// </summary>
    private static async Task<bool> FinalWeightsEqualUninterruptedAsync(ICheckpointStore store, RunView view, bool sharded, int width, long iterations)
    {
        var record = view.Catalog.First(c => c.Name == view.LastCheckpoint);
        var folder = StoreLayout.CheckpointKeyOf(record.ManifestKey);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, folder);
        var state = await NativeCheckpointReader.LoadAsync(store, folder, manifest, HostTensor.Allocator);
        var saved = (IReadOnlyDictionary<string, object?>)state[Core.Checkpointer.ModelKey]!;

        // The agents' training as one rank of a world of one: the whole model, never interrupted.
        var (model, _, step, _) = AgentCommand.Training(sharded, Seed, width, iterations, rank: 0, worldSize: 1);
        for (long i = 0; i < iterations; i++) step(i);
        var reference = model.state_dict();
        return reference.Count == saved.Count && reference.All(p =>
        {
            using var bytes = p.Value.detach().contiguous();
            return saved.GetValueOrDefault(p.Key) is HostTensor t && bytes.bytes.SequenceEqual(t.Data);
        });
    }

    /// <param name="BytesRead">Per rank, the tensor bytes its resume read (sharded agents; 0 otherwise), and <paramref name="BytesNeeded"/> what its slices hold.</param>
    /// <param name="Tier">Where rank 0 resumed from (memory, durable, scratch) and <paramref name="Reason"/> why.</param>
    /// <param name="ResumeSeconds">The slowest rank's resume, as the ranks measured it.</param>
    /// <param name="SecondsToResumed">From starting the processes until every rank had resumed (its state loaded, its first step next).</param>
    /// <param name="SecondsToFirstStep">From starting the processes until every rank finished its first step.</param>
    private sealed record AttemptResult(long LastIteration, double? LastLoss, double? FirstLoss, string? ResumedFrom, long StartIteration, List<string> Saved, int? KilledPid,
        Dictionary<long, double> Losses, long[] BytesRead, long[] BytesNeeded, string? Tier, string? Reason, double ResumeSeconds, double SecondsToResumed, double SecondsToFirstStep,
        List<string> MemoryCommitted);

    /// <summary>
    /// Starts the ranks and follows their events. With <paramref name="killAtIteration"/>, the last rank holds
    /// at that iteration and is SIGKILLed there (then every rank: a data-parallel job cannot go on without one);
    /// otherwise waits for all ranks to finish.
    /// </summary>
    private static async Task<AttemptResult> RunAgentsAsync(int count, Func<int, ChildProcess> start, IProgressLine progress, long? killAtIteration, Func<Task>? onKill = null)
    {
        var launched = System.Diagnostics.Stopwatch.StartNew();
        var ranks = Enumerable.Range(0, count).Select(start).ToList();
        var firstStep = new double?[count];
        var resumed = new double?[count];
        var resumeSeconds = new double[count];
        var memoryCommitted = new List<string>();
        string? tier = null, reason = null;
        var victim = ranks[^1];
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        long lastIteration = -1, startIteration = 0;
        double? lastLoss = null, firstLoss = null;
        string? resumedFrom = null;
        var saved = new List<string>();
        var losses = new Dictionary<long, double>();
        var errors = new string?[count];
        var bytesRead = new long[count];
        var bytesNeeded = new long[count];
        var readers = ranks.Select(async (rank, index) =>
        {
            await foreach (var e in rank.Events.ReadAllAsync())
            {
                var kind = (string?)e["event"];
                if (kind == "hold" && ReferenceEquals(rank, victim)) held.TrySetResult();
                if (kind == "error") errors[index] = (string?)e["error"];
                if (kind == "start")
                {
                    bytesRead[index] = (long?)e["bytes_read"] ?? 0;
                    bytesNeeded[index] = (long?)e["bytes_needed"] ?? 0;
                    resumeSeconds[index] = (double?)e["resume_seconds"] ?? 0;
                    resumed[index] = launched.Elapsed.TotalSeconds;
                }
                if (kind == "step") firstStep[index] ??= launched.Elapsed.TotalSeconds;
                if (index != 0) continue;
                lock (losses)
                {
                    switch (kind)
                    {
                        case "start":
                            resumedFrom = (string?)e["resumed_from"];
                            startIteration = (long)e["start_iter"]!;
                            tier = (string?)e["tier"];
                            reason = (string?)e["reason"];
                            break;
                        case "memory_committed":
                            memoryCommitted.Add((string)e["name"]!);
                            break;
                        case "step":
                            lastIteration = (long)e["iteration"]!;
                            lastLoss = (double)e["loss"]!;
                            firstLoss ??= lastLoss;
                            losses[lastIteration] = lastLoss.Value;
                            progress.Update(lastIteration + 1, $"loss {lastLoss:F5}{(saved.Count > 0 ? $" saved {saved[^1]}" : "")}");
                            break;
                        case "saved":
                            saved.Add((string)e["name"]!);
                            break;
                    }
                }
            }
        }).ToList();
        try
        {
            int? killedPid = null;
            if (killAtIteration is not null)
            {
                await Task.WhenAny(held.Task, victim.WaitForExitAsync());
                if (!held.Task.IsCompleted) throw new InvalidOperationException(await FailureOf(count - 1, "before it was killed"));
                killedPid = victim.Id;
                await victim.KillAsync();
                if (onKill is not null) await onKill();
                foreach (var other in ranks) await other.KillAsync();
            }
            else
            {
                for (var index = 0; index < count; index++)
                {
                    await ranks[index].WaitForExitAsync();
                    if (ranks[index].ExitCode != 0) throw new InvalidOperationException(await FailureOf(index, ""));
                }
            }
            await Task.WhenAll(readers); // every event the ranks printed before they ended
            return new AttemptResult(killAtIteration ?? lastIteration, lastLoss, firstLoss, resumedFrom, startIteration, saved, killedPid, losses, bytesRead, bytesNeeded,
                tier, reason, resumeSeconds.Max(), resumed.Max() ?? 0, firstStep.Max() ?? 0, memoryCommitted);
        }
        finally
        {
            foreach (var rank in ranks) await rank.DisposeAsync();
        }

        // The rank's own one-line error event, or the last line it wrote to stderr.
        async Task<string> FailureOf(int index, string when)
        {
            await readers[index];
            var reason = errors[index] ?? ranks[index].ErrorTail.Split('\n')[^1];
            return $"agent rank {index} (pid {ranks[index].Id}) exited with {ranks[index].ExitCode}{(when.Length > 0 ? " " + when : "")}: {(reason.Length > 0 ? reason : "no error reported")}";
        }
    }
}
