using System.Collections.Concurrent;
using System.Diagnostics;
using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Drives runs × ranks × checkpoints through the client path agents use (<see cref="RankCommitter"/>:
/// Begin, write the shard, Report, await the commit). Every run saves model_0000000, model_0000001, … in
/// sequence; each checkpoint is saved by all ranks at once, all runs concurrently.
/// </summary>
public sealed class CommitLoad(IGrainFactory grains, ICheckpointStore store, CommitLoadOptions options)
{
    public const string Tenant = "bench";
    public const string WindowExpired = "window_expired";
    private const int SetupConcurrency = 32;
    private static readonly PeriodicPolicy Policy = new(Period: 1); // no max_to_keep: every commit stays in the catalog
    private static readonly PeriodicPolicy WarmUpPolicy = new(Period: 1, MaxToKeep: 2); // warm-up runs commit hundreds of times: keep their state small

    private readonly long[] _epochs = new long[options.Runs];
    private readonly IReadOnlyList<NamedTensor> _tensors = Enumerable.Range(0, options.Tensors)
        .Select(i => new NamedTensor($"model/layer{i}.weight", HostTensor.Allocate(TensorDType.F32, [16]))).ToList();

    public static RunId Run(int index) => new(Tenant, $"bench-{index:D5}");

    /// <summary>Each run's attempt, once <see cref="SetupAsync"/> started it.</summary>
    public IReadOnlyList<long> Epochs => _epochs;

    /// <summary>
    /// Creates every run and starts its first attempt, then warms up outside the timed window: up to 64 extra runs
    /// (spread over the silos) commit in rounds until the silos and this client together JIT-compiled at most
    /// <see cref="SettledJitMethods"/> methods in the last <see cref="SettledFor"/> (<paramref name="compiledMethods"/>),
    /// or <paramref name="limit"/> passed. Tiered compilation keeps recompiling hot methods for tens of seconds on a
    /// busy 2-core machine (measured: 35–60 s at 64 runs × 2 ranks); a window that starts earlier measures the JIT
    /// (a fifth of all CPU in a 5-second window), not the commit path.
    /// </summary>
    public async Task<WarmUp> SetupAsync(Func<Task<long>> compiledMethods, TimeSpan limit, CancellationToken cancellationToken)
    {
        await Parallel.ForEachAsync(Enumerable.Range(0, options.Runs), new ParallelOptions { MaxDegreeOfParallelism = SetupConcurrency, CancellationToken = cancellationToken },
            async (index, _) => _epochs[index] = await StartAsync(Run(index)));
        var warmUpRuns = await Task.WhenAll(Enumerable.Range(0, Math.Min(options.Runs, MaxWarmUpRuns)).Select(async index =>
        {
            var run = new RunId(Tenant, $"warmup-{index:D2}");
            var epoch = await StartAsync(run, WarmUpPolicy);
            return Enumerable.Range(0, options.Ranks).Select(rank => new RankCommitter(grains, run, store, rank, options.Ranks, epoch)).ToList();
        }));
        var clock = Stopwatch.StartNew();
        var history = new List<(TimeSpan At, long Compiled)> { (clock.Elapsed, await compiledMethods()) };
        for (var round = 1; ; round++)
        {
            await Task.WhenAll(warmUpRuns.Select(ranks => SaveAllRanksAsync(ranks, round, cancellationToken)));
            var now = (At: clock.Elapsed, Compiled: await compiledMethods());
            history.Add(now);
            // The last sample at least SettledFor old: nothing much compiled since then means the JIT has settled.
            var quietSince = history.FindLastIndex(h => now.At - h.At >= SettledFor);
            if (quietSince >= 0 && now.Compiled - history[quietSince].Compiled <= SettledJitMethods) return new WarmUp(now.At, round, Settled: true);
            if (now.At >= limit) return new WarmUp(now.At, round, Settled: false);
        }
    }

    private const int MaxWarmUpRuns = 64;
    private const int SettledJitMethods = 50;
    private static readonly TimeSpan SettledFor = TimeSpan.FromSeconds(5);

    /// <param name="Settled">Whether JIT compilation had settled when the warm-up ended (false: it ran out of time).</param>
    public sealed record WarmUp(TimeSpan Took, int Rounds, bool Settled);

    private async Task<long> StartAsync(RunId run, PeriodicPolicy? policy = null)
    {
        var grain = grains.GetGrain<ITrainingRunGrain>(run.Key);
        await grain.Create(policy ?? Policy);
        return await grain.StartAttempt();
    }

    /// <summary>
    /// The timed window; <paramref name="checkpointDone"/> is called after each checkpoint, committed or failed, with the
    /// failures so far. Checkpoints still running or not started when <paramref name="deadline"/> fires fail as "window_expired".
    /// Every run saves iterations <paramref name="firstIteration"/> on (a later window goes on where the last one stopped).
    /// </summary>
    public async Task<CommitLoadResult> RunAsync(Action<int> checkpointDone, CancellationToken deadline, int firstIteration = 0)
    {
        var latencies = new ConcurrentBag<double>();
        var failures = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var firstErrors = new ConcurrentDictionary<string, string>(StringComparer.Ordinal);
        var failed = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, options.Runs).Select(index => Task.Run(async () =>
        {
            var ranks = Enumerable.Range(0, options.Ranks)
                .Select(rank => new RankCommitter(grains, Run(index), store, rank, options.Ranks, _epochs[index]) { CommitTimeout = options.CommitTimeout }).ToList();
            for (var i = 0; i < options.Commits; i++)
            {
                if (options.Rate is { } rate)
                {
                    // Open loop: checkpoint i of run `index` is due at (i × runs + index) / rate, whatever came before.
                    var due = TimeSpan.FromSeconds((i * (double)options.Runs + index) / rate) - clock.Elapsed;
                    if (due > TimeSpan.Zero) await Task.Delay(due, CancellationToken.None);
                }
                var failure = deadline.IsCancellationRequested ? (WindowExpired, "") : await SaveAsync(ranks, firstIteration + i, latencies, deadline);
                if (failure is var (type, message))
                {
                    failures.AddOrUpdate(type, 1, (_, n) => n + 1);
                    firstErrors.TryAdd(type, message);
                    Interlocked.Increment(ref failed);
                }
                checkpointDone(Volatile.Read(ref failed));
            }
        })));
        return new CommitLoadResult(clock.Elapsed, latencies.ToList(), failures, firstErrors);
    }

    /// <summary>One checkpoint by every rank at once: null when it committed (its latency recorded), else the failure's type and message.</summary>
    private async Task<(string Type, string Message)?> SaveAsync(IReadOnlyList<RankCommitter> ranks, int iteration, ConcurrentBag<double> latencies, CancellationToken deadline)
    {
        var started = Stopwatch.GetTimestamp();
        try
        {
            await SaveAllRanksAsync(ranks, iteration, deadline);
            latencies.Add(Stopwatch.GetElapsedTime(started).TotalMilliseconds);
            return null;
        }
        catch (OperationCanceledException) when (deadline.IsCancellationRequested)
        {
            return (WindowExpired, "");
        }
        catch (Exception e)
        {
            // Azure's retry policy throws an AggregateException of its attempts: the attempts' failure says more.
            while (e is AggregateException { InnerExceptions.Count: > 0 } aggregate) e = aggregate.InnerExceptions[0];
            return (e.GetType().Name, e.Message.ReplaceLineEndings(" "));
        }
    }

    /// <summary>Checkpoint <paramref name="iteration"/> saved by every rank of a run at once; rank 0 sends the state.</summary>
    private Task SaveAllRanksAsync(IReadOnlyList<RankCommitter> ranks, int iteration, CancellationToken cancellationToken)
    {
        var state = State(iteration);
        return Task.WhenAll(ranks.Select(r => r.SaveAsync(Policy.PeriodicName(iteration), iteration, _tensors, r.Rank == 0 ? state : null, null, cancellationToken)));
    }

    /// <summary>Runs whose catalog is not exactly the checkpoints the <paramref name="windows"/> windows saved, or could not be read.</summary>
    public async Task<int> CountWrongCatalogsAsync(int windows, CancellationToken cancellationToken)
    {
        var expected = Enumerable.Range(0, options.Commits * windows).Select(i => Policy.PeriodicName(i)).ToList();
        var wrong = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, options.Runs), new ParallelOptions { MaxDegreeOfParallelism = SetupConcurrency, CancellationToken = cancellationToken },
            async (index, _) =>
            {
                IReadOnlyList<CheckpointRecord>? catalog = null;
                try { catalog = await grains.GetGrain<ITrainingRunGrain>(Run(index).Key).ListCheckpoints(); }
                catch (Exception e) when (e is TimeoutException or OrleansException) { } // an unreadable catalog is a wrong one
                if (catalog is null || !catalog.Select(c => c.Name).Order(StringComparer.Ordinal).SequenceEqual(expected)) Interlocked.Increment(ref wrong);
            });
        return wrong;
    }

    /// <summary>Rank 0's non-tensor state: the iteration and the model's tensor references.</summary>
    private string State(long iteration)
    {
        var model = new JsonObject();
        foreach (var t in _tensors) model[t.Key["model/".Length..]] = new JsonObject { [StateTree.TensorMarker] = t.Key };
        return new JsonObject { ["iteration"] = iteration, ["model"] = model }.ToJsonString();
    }
}
