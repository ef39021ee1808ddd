using System.Text.Json.Nodes;
using Checkpointing.TrainerAgent;
using Microsoft.Extensions.Logging;

namespace Checkpointing.Cli;

/// <summary>
/// <c>ckpt demo</c>: trains the demo model locally with a PeriodicCheckpointer, resuming from the
/// save folder's last checkpoint. <c>--stop-at N</c> ends the process at iteration N as a crash would.
/// </summary>
public static class DemoCommand
{
    public const int CrashExitCode = 3;

    public static async Task<int> RunAsync(CliArguments args, CliContext context)
    {
        var dir = args.String("dir") ?? throw new UsageException("demo needs --dir DIR");
        var iterations = args.Long("iters", 200, min: 1);
        var period = (int)args.Long("period", 20, min: 1);
        var maxToKeep = (int?)args.OptionalLong("max-to-keep", min: 1);
        var stopAt = args.OptionalLong("stop-at", min: 0);
        var width = (int)args.Long("width", 64, min: 1);
        var shards = (int)args.Long("shards", 1, min: 1);
        var seed = args.Long("seed", 1);
        var json = args.Flag("json");
        var leftoverMinAge = args.Long("leftover-min-age", (long)LocalBackend.DefaultLeftoverMinimumAge.TotalSeconds, min: 0);
        args.ThrowOnUnknown(0);

        var training = new DemoTraining(seed, width, iterations);
        var logger = context.Logger("demo");
        var checkpointer = new Checkpointer(training.Model, dir, saveToDisk: true, training.Checkpointables, context.Logger("checkpointer"))
        {
            WriteOptions = new Formats.NativeWriteOptions { ShardCount = shards },
            LeftoverMinimumAge = TimeSpan.FromSeconds(leftoverMinAge),
        };
        var saved = new List<string>();
        checkpointer.Saved += saved.Add;
        var periodic = new PeriodicCheckpointer(checkpointer, period, iterations, maxToKeep);

        var resumedFrom = await checkpointer.HasCheckpointAsync() ? Path.GetFileName(await checkpointer.GetCheckpointFileAsync()) : null;
        var extra = await checkpointer.ResumeOrLoadAsync("", resume: true);
        var startIter = extra.TryGetValue("iteration", out var it) && it is long lastIteration ? lastIteration + 1 : 0;
        logger.LogInformation("Starting at iteration {Start} of {Total} (resumed from {From})", startIter, iterations, resumedFrom ?? "scratch");

        var progress = new ProgressBar(context.Error, iterations, context.Interactive);
        double? loss = null;
        long? crashedAt = null;
        for (var iteration = startIter; iteration < iterations; iteration++)
        {
            if (iteration == stopAt)
            {
                crashedAt = iteration;
                break;
            }
            loss = training.Step(iteration);
            await periodic.StepAsync(iteration, new Dictionary<string, object?> { ["loss"] = loss });
            progress.Update(iteration + 1, $"loss {loss:F5} lr {training.Optimizer.ParamGroups.First().LearningRate:G3}{(saved.Count > 0 ? $" saved {saved[^1]}" : "")}");
        }
        progress.Finish();

        var last = await checkpointer.HasCheckpointAsync() ? Path.GetFileName(await checkpointer.GetCheckpointFileAsync()) : null;
        if (json)
        {
            var summary = new JsonObject
            {
                ["resumed_from"] = resumedFrom,
                ["start_iter"] = startIter,
                ["iters"] = iterations,
                ["saved"] = new JsonArray(saved.Select(s => (JsonNode?)s).ToArray()),
                ["last"] = last,
                ["final_loss"] = loss,
                ["crashed_at"] = crashedAt,
            };
            context.Out.WriteLine(summary.ToJsonString());
        }
        else
        {
            context.Out.WriteLine($"resumed from: {resumedFrom ?? "(scratch)"}; start iteration {startIter}; saved {saved.Count}: {string.Join(' ', saved)}; last: {last ?? "(none)"}");
        }
        if (crashedAt is not null)
        {
            context.Error.WriteLine($"simulated crash at iteration {crashedAt} (--stop-at)");
            return CrashExitCode;
        }
        return 0;
    }
}
