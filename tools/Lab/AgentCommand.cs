using System.CommandLine;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.TrainerAgent;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Checkpointing.Lab;

/// <summary>
/// <c>ckpt-lab agent</c>: one rank of the demo training job in cluster mode. It resumes from the run
/// grain's last checkpoint, trains, saves per the grain's policy (streaming its share of the shards
/// into the blob store), and prints one JSON line per event on stdout for the launcher.
/// </summary>
/// <remarks>
/// The demo has no collective communication: every rank computes the same deterministic step, so
/// the replicas stay identical as data-parallel replicas would after their all-reduce.
/// </remarks>
public static class AgentCommand
{
    public static Command Build(CliContext context)
    {
        var run = CliOptions.RunOption("--run", "the run this rank trains");
        run.Required = true;
        var rank = CliOptions.Integer("--rank", "this rank", 0, min: 0);
        var worldSize = CliOptions.Integer("--world-size", "ranks in the job", 1, min: 1);
        var epoch = CliOptions.Integer("--epoch", "the attempt this rank belongs to (from ckpt run attempt)", 0, min: 1);
        var width = CliOptions.Integer("--width", "hidden width of the model", 64, min: 1);
        var seed = CliOptions.Integer("--seed", "random seed", 1);
        var holdAt = CliOptions.OptionalInteger("--hold-at", "stop before iteration N (once a memory checkpoint in flight is done) until the launcher kills this rank", min: 0);
        var stepDelay = CliOptions.Integer("--step-delay-ms", "milliseconds each training step takes on top of its compute (paces a long-running agent)", 0, min: 0);
        var heartbeat = CliOptions.Integer("--heartbeat-ms", "milliseconds between this rank's heartbeats to its run grain", 5000, min: 10);
        var incremental = CliOptions.Flag("--incremental", "save incrementally: tensors unchanged since the run's last checkpoint are referenced, not written");
        var sharded = CliOptions.Flag("--sharded", "hold only this rank's slices of a tensor-parallel model (save and load only those)");
        var holder = CliOptions.Text("--holder", "this host's memory-tier holder (`ckpt holder`), http://address:port: take the policy's memory checkpoints and resume from them", "URL");
        var holderHost = CliOptions.Text("--holder-host", "the host the holder runs on, for placement (default: this machine's name)", "NAME");
        var memoryCommitWait = CliOptions.Integer("--memory-commit-wait", "seconds a memory checkpoint waits for the other ranks' reports before it is abandoned", 30, min: 1);
        var outageBudget = CliOptions.OptionalInteger("--outage-budget",
            $"seconds a save waits out a storage outage (retrying with backoff, its checkpoint kept pending) before the rank fails; default: env {OutageBudgetVariable} (a duration, e.g. 00:05:00), else {RankCommitter.DefaultOutageBudget.TotalSeconds:0}",
            min: 0);
        var command = new Command("agent", "one training rank in cluster mode (what `ckpt-lab job` launches); JSON events on stdout")
            .With(run, rank, worldSize, epoch, width, seed, holdAt, stepDelay, heartbeat, incremental, sharded, outageBudget, holder, holderHost, memoryCommitWait);
        var cluster = ClusterOptions.AddTo(command);
        var store = StoreOptions.AddTo(command);
        command.SetAction(parse => RunAsync(new AgentOptions(parse.GetValue(run)!, (int)parse.GetValue(rank), (int)parse.GetValue(worldSize), parse.GetValue(epoch),
            (int)parse.GetValue(width), parse.GetValue(seed), parse.GetValue(holdAt), TimeSpan.FromMilliseconds(parse.GetValue(stepDelay)),
            TimeSpan.FromMilliseconds(parse.GetValue(heartbeat)), parse.GetValue(incremental),
            parse.GetValue(sharded), parse.GetValue(outageBudget) is { } seconds ? TimeSpan.FromSeconds(seconds) : OutageBudgetFromEnvironment(),
            parse.GetValue(holder) is { } url ? new HolderRef(url, parse.GetValue(holderHost) ?? Environment.MachineName) : null,
            TimeSpan.FromSeconds(parse.GetValue(memoryCommitWait))),
            cluster.Read(parse), store.Read(parse), context));
        return command;
    }

    /// <summary>The configuration key Storage:OutageBudget, as the environment carries it for agents (like the silo's CKPT_ settings).</summary>
    public const string OutageBudgetVariable = "CKPT_Storage__OutageBudget";

    private static TimeSpan OutageBudgetFromEnvironment()
    {
        if (Environment.GetEnvironmentVariable(OutageBudgetVariable) is not { Length: > 0 } text) return RankCommitter.DefaultOutageBudget;
        return TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var budget) && budget >= TimeSpan.Zero
            ? budget
            : throw new UsageException($"{OutageBudgetVariable}={text} is not a duration such as 00:02:00", "ckpt-lab agent");
    }

    private sealed record AgentOptions(RunId Run, int Rank, int WorldSize, long Epoch, int Width, long Seed, long? HoldAt, TimeSpan StepDelay, TimeSpan Heartbeat,
        bool Incremental, bool Sharded, TimeSpan OutageBudget, HolderRef? Holder, TimeSpan MemoryCommitWait);

    private static async Task<int> RunAsync(AgentOptions o, ClusterConnectionOptions options, ICheckpointStore? store, CliContext context)
    {
        var (run, rank, worldSize, epoch, width, seed, holdAt, stepDelay, heartbeat, incremental, sharded, outageBudget, holder, memoryCommitWait) = o;
        if (rank >= worldSize) throw new UsageException($"--rank {rank} is not below --world-size {worldSize}", "ckpt-lab agent");
        // The agent's checkpoint metrics and spans go to an OpenTelemetry collector when one is configured the standard way.
        var otlp = Environment.GetEnvironmentVariable("OTEL_EXPORTER_OTLP_ENDPOINT") is { Length: > 0 };
        using var metrics = otlp
            ? OpenTelemetry.Sdk.CreateMeterProviderBuilder().ConfigureResource(AgentResource).AddMeter(Core.AgentMetrics.MeterName).AddOtlpExporter().Build()
            : null;
        using var traces = otlp
            ? OpenTelemetry.Sdk.CreateTracerProviderBuilder().ConfigureResource(AgentResource).AddSource(CheckpointTracing.SourceName).AddSource("Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application").AddOtlpExporter().Build()
            : null;

        await using var connection = await ClusterOptions.ConnectAsync(options);
        var policy = await RunAgent.ReadPolicyAsync(connection.Client, run);
        var iterations = policy.MaxIter ?? throw new UsageException($"run {run} has no max_iter in its policy", "ckpt run policy");
        var (model, checkpointables, step, layouts) = Training(sharded, seed, width, iterations, rank, worldSize);
        var loaded = new Formats.LoadStatistics();
        var memoryTier = holder is null ? null : new MemoryTierOptions(holder, options.TenantToken) { CommitWait = memoryCommitWait };
        await using var agent = await RunAgent.JoinAsync(connection.Client, run, store, rank, worldSize, epoch, model, checkpointables, context.Logger($"agent{rank}"), layouts, loaded, heartbeat,
            memoryTier);
        agent.Backend.Committer.Incremental = incremental;
        agent.Backend.Committer.OutageBudget = outageBudget;
        agent.Checkpointer.Saved += name => Emit(context, "saved", rank, new JsonObject { ["name"] = name });
        if (agent.MemoryTier is { } tier) tier.Committed += name => Emit(context, "memory_committed", rank, new JsonObject { ["name"] = name, ["bytes"] = tier.LastSnapshotBytes });

        var resuming = System.Diagnostics.Stopwatch.StartNew();
        var resumed = await agent.ResumeAsync();
        var start = resumed.StartIteration;
        Emit(context, "start", rank, new JsonObject
        {
            ["resumed_from"] = resumed.Name, ["tier"] = resumed.Tier, ["reason"] = resumed.Reason, ["resume_seconds"] = resuming.Elapsed.TotalSeconds,
            ["start_iter"] = start, ["iters"] = iterations, ["epoch"] = epoch,
            ["bytes_read"] = sharded ? loaded.BytesRead : null, ["bytes_needed"] = sharded ? loaded.BytesNeeded : null,
        });

        for (var iteration = start; iteration < iterations; iteration++)
        {
            if (iteration == holdAt)
            {
                // Lets a launcher kill this rank at an exact point: it stops here until it is killed, once its memory checkpoint (if one
                // is in flight) is done, so that what was taken before the kill point is in the tier when the kill comes.
                await agent.WaitForMemoryCheckpointAsync();
                Emit(context, "hold", rank, new JsonObject { ["iteration"] = iteration });
                await Task.Delay(TimeSpan.FromMinutes(10));
                throw new TimeoutException($"rank {rank} was held at iteration {iteration} for 10 minutes and never killed");
            }
            var loss = step(iteration);
            if (stepDelay > TimeSpan.Zero) await Task.Delay(stepDelay);
            Emit(context, "step", rank, new JsonObject { ["iteration"] = iteration, ["loss"] = loss });
            await agent.StepAsync(iteration, new Dictionary<string, object?> { ["loss"] = loss });
        }
        Emit(context, "done", rank, new JsonObject { ["last"] = await agent.Backend.GetLastAsync(CancellationToken.None) });
        context.Logger("agent").LogInformation("rank {Rank} finished", rank);
        return 0;
    }

    /// <summary>The replicated demo model (every rank holds it whole), or this rank's slices of the tensor-parallel one.</summary>
    internal static (TorchSharp.torch.nn.Module Model, IEnumerable<KeyValuePair<string, object>> Checkpointables, Func<long, double> Step, Func<string, TensorLayout?>? Layouts)
        Training(bool sharded, long seed, int width, long iterations, int rank, int worldSize)
    {
        if (sharded)
        {
            var parts = new ShardedTraining(seed, width, iterations, rank, worldSize);
            return (parts.Model, parts.Checkpointables, parts.Step, parts.Layout);
        }
        var replica = new DemoTraining(seed, width, iterations);
        return (replica.Model, replica.Checkpointables, replica.Step, null);
    }

    private static void Emit(CliContext context, string kind, int rank, JsonObject fields)
    {
        fields["event"] = kind;
        fields["rank"] = rank;
        lock (context.Out)
        {
            context.Out.WriteLine(fields.ToJsonString());
            context.Out.Flush();
        }
    }

    /// <summary>The OpenTelemetry resource of a training agent: the service it reports as.</summary>
    private static void AgentResource(OpenTelemetry.Resources.ResourceBuilder resource) => resource.AddService("checkpointing-agent");
}
