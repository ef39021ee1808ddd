using System.CommandLine;
using System.Text.Json.Nodes;
using Checkpointing.Cli;
using Checkpointing.Core;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Lab;

/// <summary>
/// <c>ckpt-lab demo</c>: trains the demo model locally with a PeriodicCheckpointer, resuming from the
/// save folder's last checkpoint. <c>--stop-at N</c> ends the process at iteration N as a crash would.
/// </summary>
public static class DemoCommand
{
    public const int CrashExitCode = 3;

    /// <summary>A checkpoint the demo saved: logical and written bytes from its manifest, and the step's seconds (the save's part of it).</summary>
    private sealed record SavedCheckpoint(string Name, long LogicalBytes, long WrittenBytes, double Seconds)
    {
        public static SavedCheckpoint Read(string dir, string name, double seconds)
        {
            var manifest = Formats.NativeCheckpointReader.ReadManifestAsync(new Storage.FileSystemStore(dir), name).GetAwaiter().GetResult();
            return new SavedCheckpoint(name, manifest.TensorBytes, manifest.WrittenBytes, seconds);
        }
    }

    public static Command Build(CliContext context)
    {
        var dir = CliOptions.RequiredText("--dir", "the save folder (resumed from its last checkpoint)", "DIR");
        var iterations = CliOptions.Integer("--iters", "iterations to train", 200, min: 1);
        var period = CliOptions.Integer("--period", "save every P iterations", 20, min: 1);
        var maxToKeep = CliOptions.OptionalInteger("--max-to-keep", "keep only the K newest periodic checkpoints", min: 1);
        var stopAt = CliOptions.OptionalInteger("--stop-at", "end abruptly at iteration N (exit code 3), like a crash", min: 0);
        var width = CliOptions.Integer("--width", "hidden width of the model", 64, min: 1);
        var depth = CliOptions.Integer("--depth", "hidden layers of the model", 1, min: 1);
        var shards = CliOptions.Integer("--shards", "shards per checkpoint, written in parallel", 1, min: 1);
        var seed = CliOptions.Integer("--seed", "random seed", 1);
        var leftoverMinAge = CliOptions.Integer("--leftover-min-age", "collect leftovers of killed saves older than this many seconds",
            (long)LocalBackendOptions.DefaultLeftoverMinimumAge.TotalSeconds, min: 0);
        var freeze = CliOptions.Fraction("--freeze", "freeze the first F of the parameters and save incrementally");
        var incremental = CliOptions.Flag("--incremental", "save incrementally: tensors unchanged since an earlier checkpoint are not written again");
        var json = CliOptions.Json();
        var command = new Command("demo", "train a small model with periodic checkpoints into DIR, resuming from its last checkpoint")
            .With(dir, iterations, period, maxToKeep, stopAt, width, depth, shards, seed, leftoverMinAge, freeze, incremental, json);
        command.SetAction(parse => RunAsync(new DemoOptions(
            parse.GetValue(dir)!, parse.GetValue(iterations), (int)parse.GetValue(period), (int?)parse.GetValue(maxToKeep), parse.GetValue(stopAt),
            (int)parse.GetValue(width), (int)parse.GetValue(depth), (int)parse.GetValue(shards), parse.GetValue(seed), parse.GetValue(leftoverMinAge),
            parse.GetValue(freeze), parse.GetValue(incremental) || parse.GetValue(freeze) is not null, parse.GetValue(json)), context));
        return command;
    }

    private sealed record DemoOptions(string Dir, long Iterations, int Period, int? MaxToKeep, long? StopAt, int Width, int Depth, int Shards, long Seed,
        long LeftoverMinAge, double? Freeze, bool Incremental, bool Json);

    private static async Task<int> RunAsync(DemoOptions o, CliContext context)
    {
        var (dir, iterations, period, maxToKeep, stopAt, width, depth, shards, seed, leftoverMinAge, freeze, incremental, json) = o;
        var training = new DemoTraining(seed, width, iterations, freeze ?? 0, depth);
        var logger = context.Logger("demo");
        var checkpointer = new Checkpointer(training.Model, dir, saveToDisk: true, training.Checkpointables, context.Logger("checkpointer"),
            new LocalBackendOptions { LeftoverMinimumAge = TimeSpan.FromSeconds(leftoverMinAge), Incremental = incremental })
        {
            WriteOptions = new Formats.NativeWriteOptions { ShardCount = shards },
        };
        var saved = new List<SavedCheckpoint>();
        var saveClock = new System.Diagnostics.Stopwatch();
        checkpointer.Saved += name => saved.Add(SavedCheckpoint.Read(dir, name, saveClock.Elapsed.TotalSeconds));
        var periodic = new PeriodicCheckpointer(checkpointer, period, iterations, maxToKeep);

        var resumedFrom = await checkpointer.HasCheckpointAsync() ? Path.GetFileName(await checkpointer.GetCheckpointFileAsync()) : null;
        var extra = await checkpointer.ResumeOrLoadAsync("", resume: true);
        var startIter = extra.TryGetValue("iteration", out var it) && it is long lastIteration ? lastIteration + 1 : 0;
        logger.LogInformation("Starting at iteration {Start} of {Total} (resumed from {From})", startIter, iterations, resumedFrom ?? "scratch");

        double? loss = null;
        long? crashedAt = null;
        await CliProgress.RunAsync(context, "train", iterations, async progress =>
        {
            for (var iteration = startIter; iteration < iterations; iteration++)
            {
                if (iteration == stopAt)
                {
                    crashedAt = iteration;
                    return;
                }
                loss = training.Step(iteration);
                saveClock.Restart();
                await periodic.StepAsync(iteration, new Dictionary<string, object?> { ["loss"] = loss });
                progress.Update(iteration + 1, $"loss {loss:F5} lr {training.Optimizer.ParamGroups.First().LearningRate:G3}{(saved.Count > 0 ? $" saved {saved[^1].Name}" : "")}");
            }
        });

        var last = await checkpointer.HasCheckpointAsync() ? Path.GetFileName(await checkpointer.GetCheckpointFileAsync()) : null;
        if (json)
        {
            var summary = new JsonObject
            {
                ["resumed_from"] = resumedFrom,
                ["start_iter"] = startIter,
                ["iters"] = iterations,
                ["saved"] = new JsonArray(saved.Select(s => (JsonNode?)s.Name).ToArray()),
                ["bytes_written"] = new JsonArray(saved.Select(s => (JsonNode?)s.WrittenBytes).ToArray()),
                ["save_seconds"] = new JsonArray(saved.Select(s => (JsonNode?)Math.Round(s.Seconds, 4)).ToArray()),
                ["logical_bytes"] = saved.Count > 0 ? saved[^1].LogicalBytes : null,
                ["incremental"] = incremental,
                ["frozen_fraction"] = training.FrozenFraction,
                ["last"] = last,
                ["final_loss"] = loss,
                ["crashed_at"] = crashedAt,
            };
            context.Out.WriteLine(summary.ToJsonString());
        }
        else
        {
            context.Out.WriteLine($"resumed from: {resumedFrom ?? "(scratch)"}; start iteration {startIter}; saved {saved.Count}: {string.Join(' ', saved.Select(s => s.Name))}; last: {last ?? "(none)"}");
            if (incremental && saved.Count > 0)
                context.Out.WriteLine($"incremental ({training.FrozenFraction:P0} of parameters frozen): wrote {string.Join(' ', saved.Select(s => $"{s.WrittenBytes:N0}"))} of {saved[^1].LogicalBytes:N0} bytes per checkpoint");
        }
        if (crashedAt is not null)
        {
            context.Error.WriteLine($"simulated crash at iteration {crashedAt} (--stop-at)");
            return CrashExitCode;
        }
        return 0;
    }
}
