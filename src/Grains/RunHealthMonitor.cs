using Checkpointing.Contracts;

namespace Checkpointing.Grains;

/// <summary>
/// What a run grain knows of its ranks between commits: the newest heartbeat of each rank of the current attempt and a bounded
/// series of progress points, in memory only (O(world size + <see cref="ProgressCapacity"/>), no state write per beat), and
/// the run's health computed from them on every read. A new activation starts empty; ranks are heard again within one
/// heartbeat interval. Thread-safe: the silo's metrics read <see cref="View"/> outside the grain's turns.
/// </summary>
internal sealed class RunHealthMonitor(TimeProvider time, RunGrainOptions options)
{
    /// <summary>How many progress points are kept (one per second at most: ten minutes of a busy run).</summary>
    public const int ProgressCapacity = 600;

    private static readonly TimeSpan PointSpacing = TimeSpan.FromSeconds(1);
    private readonly Lock _lock = new();
    private readonly Dictionary<int, Beat> _ranks = [];
    private readonly List<ProgressPoint> _progress = [];
    private long _epoch = -1;
    private int _worldSize;
    private DateTimeOffset? _firstBeatUtc;
    private long? _iteration;
    private DateTimeOffset? _progressUtc;
    private bool _finished;
    private bool _checkpointing;

    private sealed record Beat(DateTimeOffset AtUtc, long Iteration, double? Loss, double? StepSeconds);

    /// <summary>The progress series, oldest first.</summary>
    public IReadOnlyList<ProgressPoint> Progress { get { lock (_lock) return _progress.ToList(); } }

    /// <summary>When any rank of the current attempt was last heard from.</summary>
    public DateTimeOffset? LastHeartbeatUtc { get { lock (_lock) return NewestBeat(); } }

    private DateTimeOffset? NewestBeat() => _ranks.Count == 0 ? null : _ranks.Values.Max(b => b.AtUtc);

    /// <summary>Forgets the ranks of earlier attempts (their beats no longer count); the progress series stays.</summary>
    public void NewAttempt(long epoch)
    {
        lock (_lock) Forget(epoch);
    }

    private void Forget(long epoch)
    {
        if (epoch == _epoch) return;
        (_epoch, _worldSize, _firstBeatUtc, _iteration, _progressUtc) = (epoch, 0, null, null, null);
        _ranks.Clear();
    }

    /// <summary>Keeps <paramref name="beat"/> when it belongs to <paramref name="currentEpoch"/>; refuses a rank outside its world.</summary>
    /// <remarks>
    /// A loss that is not finite (a diverged run) and a step time that is not a finite non-negative number are kept as unknown:
    /// the beat still proves the rank alive.</remarks>
    /// <exception cref="RunRefusedException">the rank or world size is out of range</exception>
    public void Record(RankHeartbeat beat, long currentEpoch)
    {
        RequestBounds.RankInWorld(beat.Rank, beat.WorldSize);
        if (beat.Epoch != currentEpoch) return; // a straggler of another attempt says nothing about this one
        lock (_lock) Keep(beat, time.GetUtcNow());
    }

    private void Keep(RankHeartbeat beat, DateTimeOffset now)
    {
        Forget(beat.Epoch);
        _firstBeatUtc ??= now;
        if (beat.WorldSize != _worldSize)
        {
            _worldSize = beat.WorldSize;
            foreach (var gone in _ranks.Keys.Where(rank => rank >= _worldSize).ToList()) _ranks.Remove(gone);
        }
        _ranks[beat.Rank] = new Beat(now, beat.Iteration, Finite(beat.Loss), Finite(beat.StepSeconds) is >= 0 and var step ? step : null);
        // The job's iteration is its slowest live rank's: a dead rank's last one would hold the series back for good.
        var iteration = _ranks.Values.Where(b => now - b.AtUtc <= options.RankMissingAfter).Min(b => b.Iteration);
        if (_iteration is not { } known || iteration > known) (_iteration, _progressUtc) = (iteration, now);
        if (beat.Rank == _ranks.Keys.Min()) AddPoint(new ProgressPoint(now, iteration, _ranks[beat.Rank].Loss, _ranks[beat.Rank].StepSeconds));
    }

    private static double? Finite(double? value) => value is { } v && double.IsFinite(v) ? v : null;

    private void AddPoint(ProgressPoint point)
    {
        // One point per second: a burst of beats replaces the newest point instead of pushing older ones out.
        if (_progress.Count > 0 && point.AtUtc - _progress[^1].AtUtc < PointSpacing) _progress[^1] = point;
        else _progress.Add(point);
        if (_progress.Count > ProgressCapacity) _progress.RemoveAt(0);
    }

    /// <summary>What the grain knows of the run's checkpoints, kept for <see cref="View"/>.</summary>
    /// <param name="finished">The run committed its final checkpoint.</param>
    /// <param name="checkpointing">A checkpoint of the current attempt is pending.</param>
    public void Observe(bool finished, bool checkpointing)
    {
        lock (_lock) (_finished, _checkpointing) = (finished, checkpointing);
    }

    /// <summary>The run's health now, with the checkpoint facts the grain gave last (<see cref="Observe"/>): callable from any thread.</summary>
    public RunHealthView View()
    {
        lock (_lock) return Compute(time.GetUtcNow());
    }

    private RunHealthView Compute(DateTimeOffset now)
    {
        var (finished, checkpointing) = (_finished, _checkpointing);
        if (_firstBeatUtc is not { } first)
        {
            return finished
                ? new RunHealthView(RunHealth.Finished, "the final checkpoint is committed", [], 0, null, null, null, null, null)
                : new RunHealthView(RunHealth.Waiting, "no rank of this attempt has been heard from yet", [], 0, null, null, null, null, null);
        }
        var missing = Enumerable.Range(0, _worldSize)
            .Select(rank => new MissingRank(rank, _ranks.TryGetValue(rank, out var beat) ? beat.AtUtc : first))
            .Where(m => now - m.SinceUtc > options.RankMissingAfter).ToList();
        var live = _ranks.Where(r => !missing.Any(m => m.Rank == r.Key)).OrderBy(r => r.Key).Select(r => r.Value).ToList();
        var steps = live.Where(b => b.StepSeconds is not null).Select(b => b.StepSeconds!.Value).Order().ToList();
        double? step = steps.Count == 0 ? null : steps[steps.Count / 2];
        var stallAfter = TimeSpan.FromSeconds(Math.Max(options.StallMinimum.TotalSeconds, options.StallSteps * (step ?? 0)));
        var (state, detail) = (finished, missing.Count, checkpointing) switch
        {
            (true, _, _) => (RunHealth.Finished, "the final checkpoint is committed"),
            (_, var count, _) when count == _worldSize => (RunHealth.Failed, $"every rank has been silent for over {Seconds(options.RankMissingAfter)}; the job is gone"),
            (_, > 0, _) => (RunHealth.RankMissing, $"{Ranks(missing)} silent since {missing.Min(m => m.SinceUtc).UtcDateTime:HH:mm:ss} UTC"),
            (_, _, true) => (RunHealth.Checkpointing, "a checkpoint is pending"),
            _ when now - _progressUtc > stallAfter => (RunHealth.Stalled, $"no iteration since {_progressUtc!.Value.UtcDateTime:HH:mm:ss} UTC (limit {Seconds(stallAfter)})"),
            _ => (RunHealth.Healthy, $"iteration {_iteration} and advancing"),
        };
        var lossSource = live.Count > 0 ? live[0] : null;
        var iteration = live.Count > 0 ? live.Min(b => b.Iteration) : _iteration; // a dead rank's last iteration is not the job's
        return new RunHealthView(state, detail, missing, _worldSize, NewestBeat(), iteration, lossSource?.Loss, step, _progressUtc);
    }

    private static string Ranks(List<MissingRank> missing) =>
        missing.Count == 1 ? $"rank {missing[0].Rank}" : $"ranks {string.Join(", ", missing.Take(8).Select(m => m.Rank))}{(missing.Count > 8 ? $" and {missing.Count - 8} more" : "")}";

    private static string Seconds(TimeSpan span) => $"{span.TotalSeconds:0} s";
}
