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
        var json = CliOptions.Json();
        var repo = CliOptions.Text("--repo", "the repository (found from the working folder when not given)", "DIR");
        var siloDll = CliOptions.Text("--silo-dll", "the silo to start (default: the repository's build)", "FILE");
        var command = new Command("job", "the main job on this machine: Azurite, a silo, N agents checkpointing into blobs; one agent is SIGKILLed, the job resumes")
            .With(agents, iterations, period, maxToKeep, killAt, width, sharded, resumeAgents, json, repo, siloDll);
        command.SetAction(parse =>
        {
            var root = parse.GetValue(repo) ?? RepositoryBuilds.FindRoot();
            var iters = parse.GetValue(iterations);
            var count = (int)parse.GetValue(agents);
            return RunAsync(new JobOptions(count, (int)(parse.GetValue(resumeAgents) ?? count), iters, (int)parse.GetValue(period), (int)parse.GetValue(maxToKeep),
                parse.GetValue(killAt) ?? iters / 2, (int)parse.GetValue(width), parse.GetValue(sharded), parse.GetValue(json), root,
                parse.GetValue(siloDll) ?? RepositoryBuilds.Sibling(root, "Silo", "Checkpointing.Silo.dll")), context);
        });
        return command;
    }

    private sealed record JobOptions(int Agents, int ResumeAgents, long Iterations, int Period, int MaxToKeep, long KillAt, int Width, bool Sharded, bool Json,
        string Repo, string SiloDll);

    /// <summary>The agents' seed (their default): the uninterrupted reference trains from the same one.</summary>
    private const long Seed = 1;

    private static async Task<int> RunAsync(JobOptions o, CliContext context)
    {
        var (agents, resumeAgents, iterations, period, maxToKeep, killAt, width, sharded, json, repo, siloDll) = o;
        if (killAt >= iterations) throw new UsageException("--kill-at must be below --iters", "ckpt-lab job");
        var say = (string line) => context.Error.WriteLine($"[job] {line}");

        say("starting Azurite (127.0.0.1, in memory)");
        await using var azurite = await Azurite.StartAsync(repo);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var (siloPort, gatewayPort, healthPort) = (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
        say($"starting a silo (gateway 127.0.0.1:{gatewayPort}, readiness http://127.0.0.1:{healthPort}/readyz)");
        await using var silo = ChildProcess.Start("dotnet", [siloDll], new Dictionary<string, string>
        {
            ["CKPT_Silo__Mode"] = "Dev",
            ["CKPT_Silo__SiloPort"] = $"{siloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{gatewayPort}",
            ["CKPT_Silo__HealthPort"] = $"{healthPort}",
            ["CKPT_Storage__ConnectionString"] = azurite.ConnectionString,
            ["CKPT_Tenancy__SigningKey"] = key,
        });
        await silo.WaitReadyAsync(healthPort);

        var run = new RunId("demo", $"job-{DateTime.UtcNow:yyyyMMdd-HHmmss}");
        var token = TenantTokens.Issue(Convert.FromBase64String(key), run.Tenant, DateTimeOffset.UtcNow.AddHours(6));
        await using var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = [$"127.0.0.1:{gatewayPort}"], TenantToken = token });
        var grain = connection.Run(run);
        await grain.Create(new PeriodicPolicy(period, iterations, maxToKeep));
        say($"run {run}: period {period}, max_iter {iterations}, max_to_keep {maxToKeep}, {agents} {(sharded ? "tensor-parallel " : "")}agents, {resumeAgents} after the kill");

        var agentArgs = new Func<int, int, long, long?, string[]>((rank, world, epoch, holdAt) =>
        [
            typeof(JobCommand).Assembly.Location, "agent", "--run", run.Key, "--rank", $"{rank}", "--world-size", $"{world}", "--epoch", $"{epoch}",
            "--width", $"{width}", "--seed", $"{Seed}", "--silo", $"127.0.0.1:{gatewayPort}",
            .. holdAt is { } h ? new[] { "--hold-at", $"{h}" } : [],
            .. sharded ? new[] { "--sharded" } : [],
        ]);
        // Secrets go to the agents through their environment: a command line is readable by every user (/proc/PID/cmdline).
        var agentSecrets = new Dictionary<string, string> { [ClusterOptions.TokenVariable] = token, [ClusterOptions.StorageVariable] = azurite.ConnectionString };
        var killedRank = agents - 1;
        var (first, lastBeforeKill, second) = await CliProgress.RunAsync(context, "job", iterations, async progress =>
        {
            // Attempt 1: train until the kill point, then SIGKILL the last rank; the job restarts all ranks.
            var epoch1 = await grain.StartAttempt();
            var first = await RunAgentsAsync(agents, rank => ChildProcess.Start("dotnet", agentArgs(rank, agents, epoch1, rank == agents - 1 ? killAt : null), agentSecrets), progress, killAtIteration: killAt);
            progress.Log($"[job] SIGKILLed agent rank {killedRank} (pid {first.KilledPid}) at iteration {killAt}; the job restarts");
            var lastBeforeKill = (await grain.GetLastCheckpoint())?.Name;

            // Attempt 2: a new epoch fences anything the dead attempt might still send; every rank resumes from the grain's last
            // checkpoint, resharded when the job comes back with another number of agents.
            var epoch2 = await grain.StartAttempt();
            var second = await RunAgentsAsync(resumeAgents, rank => ChildProcess.Start("dotnet", agentArgs(rank, resumeAgents, epoch2, null), agentSecrets), progress, killAtIteration: null);
            return (first, lastBeforeKill, second);
        });

        var view = await grain.Get();
        RunCommands.Print(context.Error, false, view);
        say("training an uninterrupted reference in this process to compare the final weights");
        var sameWeights = await FinalWeightsEqualUninterruptedAsync(AzureBlobStore.FromConnectionString(azurite.ConnectionString, StoreOptions.DefaultContainer), view, sharded, width, iterations);
        var siloMetrics = await SiloMetricsScrape.CountersAsync(healthPort);
        var history = await grain.GetHistory();
        await silo.StopAsync(TimeSpan.FromSeconds(20));
        var summary = new JsonObject
        {
            ["run"] = run.Key,
            ["agents"] = agents,
            ["resume_agents"] = resumeAgents,
            ["sharded"] = sharded,
            ["attempts"] = 2,
            ["killed_rank"] = killedRank,
            ["killed_at_iteration"] = first.LastIteration,
            ["last_before_kill"] = lastBeforeKill,
            ["resumed_from"] = second.ResumedFrom,
            ["start_iter"] = second.StartIteration,
            ["loss_before_kill"] = first.LastLoss,
            ["loss_after_resume"] = second.FirstLoss,
            // The same iteration's loss in the killed attempt: a resume that continues exactly reproduces it.
            ["first_attempt_loss_at_start_iter"] = first.Losses.TryGetValue(second.StartIteration, out var same) ? same : null,
            ["weights_equal_to_uninterrupted"] = sameWeights,
            ["bytes_read_per_rank"] = sharded ? new JsonArray(second.BytesRead.Select(b => (JsonNode?)b).ToArray()) : null,
            ["bytes_needed_per_rank"] = sharded ? new JsonArray(second.BytesNeeded.Select(b => (JsonNode?)b).ToArray()) : null,
            ["saved"] = new JsonArray(first.Saved.Concat(second.Saved).Select(s => (JsonNode?)s).ToArray()),
            ["last"] = view.LastCheckpoint,
            ["catalog"] = RunJson.Of(view)["checkpoints"]!.DeepClone(),
            ["silo_metrics"] = siloMetrics,
            ["history"] = RunJson.Of(run, history)["history"]!.DeepClone(),
        };
        context.Out.WriteLine(json ? summary.ToJsonString() : $"job {run}: resumed from {second.ResumedFrom} at iteration {second.StartIteration}; last checkpoint {view.LastCheckpoint}");
        return view.LastCheckpoint == new PeriodicPolicy(period, iterations).FinalName && sameWeights ? 0 : 1;
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
    private sealed record AttemptResult(long LastIteration, double? LastLoss, double? FirstLoss, string? ResumedFrom, long StartIteration, List<string> Saved, int? KilledPid,
        Dictionary<long, double> Losses, long[] BytesRead, long[] BytesNeeded);

    /// <summary>
    /// Starts the ranks and follows their events. With <paramref name="killAtIteration"/>, the last rank holds
    /// at that iteration and is SIGKILLed there (then every rank: a data-parallel job cannot go on without one);
    /// otherwise waits for all ranks to finish.
    /// </summary>
    private static async Task<AttemptResult> RunAgentsAsync(int count, Func<int, ChildProcess> start, IProgressLine progress, long? killAtIteration)
    {
        var ranks = Enumerable.Range(0, count).Select(start).ToList();
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
                }
                if (index != 0) continue;
                lock (losses)
                {
                    switch (kind)
                    {
                        case "start":
                            resumedFrom = (string?)e["resumed_from"];
                            startIteration = (long)e["start_iter"]!;
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
            return new AttemptResult(killAtIteration ?? lastIteration, lastLoss, firstLoss, resumedFrom, startIteration, saved, killedPid, losses, bytesRead, bytesNeeded);
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
