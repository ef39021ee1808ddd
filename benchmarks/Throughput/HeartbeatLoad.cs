using Checkpointing.Contracts;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Every rank of every run sending its heartbeat each <paramref name="interval"/>, as agents do, phases spread evenly over the
/// interval: the load heartbeats add to a silo, for the commit benchmark's A/B windows.
/// </summary>
public sealed class HeartbeatLoad(IGrainFactory grains, int runs, int ranks, IReadOnlyList<long> epochs, TimeSpan interval)
{
    private long _sent;
    private long _failed;

    /// <summary>Heartbeats answered so far.</summary>
    public long Sent => Interlocked.Read(ref _sent);

    /// <summary>Heartbeats that failed (counted, not retried: an agent's next beat goes out on time).</summary>
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>Beats until <paramref name="stop"/> is cancelled.</summary>
    public Task RunAsync(CancellationToken stop)
    {
        var senders = runs * ranks;
        return Task.WhenAll(Enumerable.Range(0, senders).Select(sender => Task.Run(async () =>
        {
            var (run, rank) = (sender / ranks, sender % ranks);
            var grain = grains.GetGrain<ICheckpointProtocol>(CommitLoad.Run(run).Key);
            try
            {
                await Task.Delay(interval * sender / senders, stop);
                using var timer = new PeriodicTimer(interval);
                long beats = 0;
                do
                {
                    try
                    {
                        await grain.Heartbeat(new RankHeartbeat(rank, ranks, epochs[run], beats++, 0.5, interval.TotalSeconds));
                        Interlocked.Increment(ref _sent);
                    }
                    catch (Exception e) when (e is not OperationCanceledException) { Interlocked.Increment(ref _failed); }
                }
                while (await timer.WaitForNextTickAsync(stop));
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested) { }
        }, CancellationToken.None)));
    }
}
