using Checkpointing.Contracts;
using CsCheck;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// The run's health from heartbeats, on a clock the test moves: which state wins, which ranks are missing and since when,
/// and that what the grain keeps stays bounded whatever beats arrive.
/// </summary>
public sealed class RunHealthMonitorTests
{
    private static readonly RunGrainOptions Options = new() { RankMissingAfter = TimeSpan.FromSeconds(15), StallSteps = 10, StallMinimum = TimeSpan.FromSeconds(60) };
    private readonly ManualClock _clock = new(new DateTimeOffset(2026, 12, 7, 12, 0, 0, TimeSpan.Zero));

    private RunHealthMonitor Monitor(long epoch = 1)
    {
        var monitor = new RunHealthMonitor(_clock, Options);
        monitor.NewAttempt(epoch);
        return monitor;
    }

    private static RankHeartbeat Beat(int rank, long iteration, double? loss = null, int worldSize = 2, long epoch = 1) =>
        new(rank, worldSize, epoch, iteration, loss, 0.5);

    [Fact]
    public void A_run_no_rank_has_spoken_for_is_waiting_and_one_whose_ranks_step_is_healthy()
    {
        var monitor = Monitor();
        Assert.Equal(RunHealth.Waiting, ViewOf(monitor, finished: false, checkpointing: false).State);

        monitor.Record(Beat(0, 3, loss: 0.25), currentEpoch: 1);
        monitor.Record(Beat(1, 4), currentEpoch: 1);
        var view = ViewOf(monitor, false, false);

        Assert.Equal(RunHealth.Healthy, view.State);
        Assert.Equal(3, view.Iteration); // the job is as far as its slowest rank
        Assert.Equal(0.25, view.Loss);
        Assert.Equal(2, view.WorldSize);
        Assert.Empty(view.MissingRanks);
    }

    [Fact]
    public void A_rank_silent_past_the_limit_is_named_with_its_last_beat_and_every_rank_silent_is_failed()
    {
        var monitor = Monitor();
        monitor.Record(Beat(0, 1), 1);
        monitor.Record(Beat(1, 1), 1);
        var rank1LastBeat = _clock.GetUtcNow();
        for (var second = 1; second <= 16; second++)
        {
            _clock.Advance(TimeSpan.FromSeconds(1));
            monitor.Record(Beat(0, 1 + second), 1);
        }

        var missing = ViewOf(monitor, false, checkpointing: true);
        Assert.Equal(RunHealth.RankMissing, missing.State); // a missing rank outranks the pending checkpoint it holds up
        var rank = Assert.Single(missing.MissingRanks);
        Assert.Equal((1, rank1LastBeat), (rank.Rank, rank.SinceUtc));
        Assert.Contains("rank 1 silent since 12:00:00 UTC", missing.Detail);
        Assert.Equal(17, missing.Iteration); // the live rank's, not the dead rank's last

        _clock.Advance(TimeSpan.FromSeconds(16));
        var failed = ViewOf(monitor, false, false);
        Assert.Equal(RunHealth.Failed, failed.State);
        Assert.Equal([0, 1], failed.MissingRanks.Select(m => m.Rank));
        Assert.Equal(RunHealth.Finished, ViewOf(monitor, finished: true, checkpointing: false).State);
    }

    [Fact]
    public void A_rank_never_heard_from_counts_missing_from_the_attempts_first_beat()
    {
        var monitor = Monitor();
        var first = _clock.GetUtcNow();
        monitor.Record(Beat(0, 0, worldSize: 3), 1);
        _clock.Advance(TimeSpan.FromSeconds(10));
        monitor.Record(Beat(0, 1, worldSize: 3), 1);
        Assert.Equal(RunHealth.Healthy, ViewOf(monitor, false, false).State);

        _clock.Advance(TimeSpan.FromSeconds(6));
        monitor.Record(Beat(0, 2, worldSize: 3), 1);
        var view = ViewOf(monitor, false, false);
        Assert.Equal(RunHealth.RankMissing, view.State);
        Assert.Equal([(1, first), (2, first)], view.MissingRanks.Select(m => (m.Rank, m.SinceUtc)));
        Assert.Contains("ranks 1, 2", view.Detail);
    }

    [Fact]
    public void Ranks_alive_without_progress_past_ten_steps_and_the_minimum_are_stalled_and_a_pending_checkpoint_is_not()
    {
        var monitor = Monitor();
        for (var second = 0; second < 70; second += 5)
        {
            monitor.Record(Beat(0, 7), 1);
            monitor.Record(Beat(1, 7), 1);
            _clock.Advance(TimeSpan.FromSeconds(5));
        }
        monitor.Record(Beat(0, 7), 1);
        monitor.Record(Beat(1, 7), 1);

        Assert.Equal(RunHealth.Stalled, ViewOf(monitor, false, false).State);
        Assert.Equal(RunHealth.Checkpointing, ViewOf(monitor, false, checkpointing: true).State);
        monitor.Record(Beat(0, 8), 1);
        monitor.Record(Beat(1, 8), 1);
        Assert.Equal(RunHealth.Healthy, ViewOf(monitor, false, false).State);
    }

    [Fact]
    public void Beats_of_another_attempt_are_ignored_and_a_new_attempt_forgets_the_old_ranks()
    {
        var monitor = Monitor(epoch: 2);
        monitor.Record(Beat(0, 50, epoch: 1), currentEpoch: 2);
        Assert.Equal(RunHealth.Waiting, ViewOf(monitor, false, false).State);

        monitor.Record(Beat(0, 5, epoch: 2), 2);
        monitor.Record(Beat(1, 5, epoch: 2), 2);
        monitor.NewAttempt(3);
        Assert.Equal(RunHealth.Waiting, ViewOf(monitor, false, false).State);
        Assert.NotEmpty(monitor.Progress); // the series spans attempts: a resume shows as a dip in iteration
    }

    [Fact]
    public void A_loss_that_is_not_finite_is_kept_as_unknown_and_a_rank_outside_its_world_is_refused()
    {
        var monitor = Monitor();
        monitor.Record(new RankHeartbeat(0, 1, 1, 3, double.PositiveInfinity, double.NaN), 1);
        var view = ViewOf(monitor, false, false);
        Assert.Null(view.Loss);
        Assert.Null(view.StepSeconds);
        Assert.Equal(RunHealth.Healthy, view.State); // the beat still proves the rank alive

        Assert.Throws<RunRefusedException>(() => monitor.Record(Beat(2, 0, worldSize: 2), 1));
        Assert.Throws<RunRefusedException>(() => monitor.Record(Beat(0, 0, worldSize: RequestBounds.MaxWorldSize + 1), 1));
    }

    /// <summary>Whatever beats arrive, in whatever order: at most one point per second, at most the capacity, ranks only of the newest world.</summary>
    [Fact]
    public void What_the_monitor_keeps_stays_bounded_whatever_beats_arrive()
    {
        var beats = Gen.Select(Gen.Int[0, 7], Gen.Int[1, 8], Gen.Long[-1, 10_000], Gen.Int[0, 2_500]).Array[1, 2_000];
        beats.Sample(sequence =>
        {
            var clock = new ManualClock(DateTimeOffset.UnixEpoch);
            var monitor = new RunHealthMonitor(clock, Options);
            monitor.NewAttempt(1);
            foreach (var (rank, worldSize, iteration, millis) in sequence)
            {
                clock.Advance(TimeSpan.FromMilliseconds(millis));
                if (rank < worldSize) monitor.Record(new RankHeartbeat(rank, worldSize, 1, iteration, iteration * 0.001, 0.1), 1);
            }
            var points = monitor.Progress;
            var view = ViewOf(monitor, false, false);
            return points.Count <= RunHealthMonitor.ProgressCapacity
                && points.Zip(points.Skip(1)).All(pair => pair.Second.AtUtc - pair.First.AtUtc >= TimeSpan.FromSeconds(1))
                && view.MissingRanks.All(m => m.Rank < view.WorldSize);
        }, iter: 200);
    }

    /// <summary>The health the monitor gives once the grain told it these checkpoint facts.</summary>
    private static RunHealthView ViewOf(RunHealthMonitor monitor, bool finished, bool checkpointing)
    {
        monitor.Observe(finished, checkpointing);
        return monitor.View();
    }

    private sealed class ManualClock(DateTimeOffset start) : TimeProvider
    {
        private DateTimeOffset _now = start;
        public override DateTimeOffset GetUtcNow() => _now;
        public void Advance(TimeSpan by) => _now += by;
    }
}
