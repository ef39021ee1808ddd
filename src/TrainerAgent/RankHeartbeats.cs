using System.Diagnostics;
using Checkpointing.Contracts;
using Microsoft.Extensions.Logging;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// A rank's heartbeats to its run grain: the newest step's iteration, loss and step time, sent every <see cref="Interval"/> from a
/// background loop, never from the step or the save, so a rank blocked in a long save or a collective still counts as alive
/// and a step costs a few field writes. A beat that fails (a silo failing over) is dropped; the next one goes out on time.
/// </summary>
internal sealed class RankHeartbeats : IAsyncDisposable
{
    /// <summary>The agents' default interval; the silo's <c>Runs:RankMissingAfter</c> (15 s) is three of them.</summary>
    public static readonly TimeSpan DefaultInterval = TimeSpan.FromSeconds(5);

    private readonly ICheckpointProtocol _grain;
    private readonly int _rank;
    private readonly int _worldSize;
    private readonly long _epoch;
    private readonly ILogger? _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly Task _loop;
    private long _iteration = -1;
    private double? _loss;
    private double? _stepSeconds;
    private long _lastStepTimestamp;

    public RankHeartbeats(ICheckpointProtocol grain, int rank, int worldSize, long epoch, TimeSpan interval, ILogger? logger)
    {
        if (interval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(interval), interval, "A heartbeat interval is positive.");
        (_grain, _rank, _worldSize, _epoch, Interval, _logger) = (grain, rank, worldSize, epoch, interval, logger);
        _loop = Task.Run(BeatAsync);
    }

    /// <summary>How often a beat goes out.</summary>
    public TimeSpan Interval { get; }

    /// <summary>Notes a step: what the next beat carries. The step time is the time since the previous step.</summary>
    public void Stepped(long iteration, double? loss)
    {
        var now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            _stepSeconds = _lastStepTimestamp == 0 ? _stepSeconds : Stopwatch.GetElapsedTime(_lastStepTimestamp, now).TotalSeconds;
            (_iteration, _loss, _lastStepTimestamp) = (iteration, loss, now);
        }
    }

    private RankHeartbeat Next()
    {
        lock (_lock) return new RankHeartbeat(_rank, _worldSize, _epoch, _iteration, _loss, _stepSeconds);
    }

    private async Task BeatAsync()
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            try
            {
                await _grain.Heartbeat(Next()).WaitAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested) { return; }
            catch (Exception e) when (e is ObjectDisposedException or RunNotFoundException)
            {
                _logger?.LogDebug(e, "Rank {Rank}: heartbeats stop ({Reason})", _rank, e.GetType().Name);
                return; // the cluster client is gone, or the run: nobody is left to hear them
            }
            catch (Exception e)
            {
                _logger?.LogDebug(e, "Rank {Rank}: a heartbeat failed; the next goes out in {Interval}", _rank, Interval);
            }
        }
        while (await WaitAsync(timer).ConfigureAwait(false));
    }

    private async Task<bool> WaitAsync(PeriodicTimer timer)
    {
        try { return await timer.WaitForNextTickAsync(_stop.Token).ConfigureAwait(false); }
        catch (OperationCanceledException) { return false; }
    }

    /// <summary>Stops the beats; the grain then counts the rank missing after its limit, as for a rank that died.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync().ConfigureAwait(false);
        await _loop.ConfigureAwait(false);
        _stop.Dispose();
    }
}
