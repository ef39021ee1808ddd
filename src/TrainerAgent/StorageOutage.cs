using System.Net.Sockets;

namespace Checkpointing.TrainerAgent;

/// <summary>
/// How a rank rides out a storage outage longer than the storage client's own retries: it tries the work again after an
/// exponentially growing, jittered wait (1 s doubling to 15 s, each drawn between half and all of it, so that ranks do not
/// come back in step), keeps its pending checkpoint alive at the run grain between tries, and gives up with
/// <see cref="StorageOutageException"/> once the outage has lasted the budget. Only faults that a later try may not meet
/// are retried (no answer, a refused or reset connection, 408, 429, 5xx); anything else, and a cancellation, fails at once.
/// </summary>
internal static class StorageOutage
{
    private static readonly TimeSpan FirstWait = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LongestWait = TimeSpan.FromSeconds(15);

    /// <param name="work">The storage work, tried again whole after each outage fault; its result is returned.</param>
    /// <param name="budget">How long, from the first try, faults are ridden out; a fault after that throws <see cref="StorageOutageException"/>.</param>
    /// <param name="keepAlive">Called at least every <paramref name="keepAliveEvery"/> while waiting (a retried Begin: the grain counts it
    /// as progress, so the checkpoint does not expire); its own transient failures are ignored.</param>
    /// <param name="keepAliveEvery">How often <paramref name="keepAlive"/> is called while waiting between tries.</param>
    /// <param name="cancellationToken">Ends a wait at once (<see cref="OperationCanceledException"/>); a fault met while it is cancelled
    /// is thrown as it is, not retried. <paramref name="work"/> observes its own token.</param>
    public static async Task<T> RideAsync<T>(Func<Task<T>> work, TimeSpan budget, Func<Task> keepAlive, TimeSpan keepAliveEvery, CancellationToken cancellationToken)
    {
        var started = DateTimeOffset.UtcNow;
        var wait = FirstWait;
        while (true)
        {
            try
            {
                return await work().ConfigureAwait(false);
            }
            catch (Exception e) when (IsOutage(e) && !cancellationToken.IsCancellationRequested)
            {
                var left = budget - (DateTimeOffset.UtcNow - started);
                if (left <= TimeSpan.Zero) throw new StorageOutageException(budget, e);
                var jittered = wait * (0.5 + 0.5 * Random.Shared.NextDouble());
                for (var rest = jittered < left ? jittered : left; rest > TimeSpan.Zero; rest -= keepAliveEvery)
                {
                    await Task.Delay(rest < keepAliveEvery ? rest : keepAliveEvery, cancellationToken).ConfigureAwait(false);
                    try { await keepAlive().ConfigureAwait(false); }
                    catch (Exception k) when (Transient.IsTransient(k)) { } // the cluster may be away too: the next try tells
                }
                wait = wait * 2 < LongestWait ? wait * 2 : LongestWait;
            }
        }
    }

    /// <summary>A storage fault a later try may not meet. A full disk, a refusal, a denied credential or a damaged checkpoint is not one.</summary>
    public static bool IsOutage(Exception e) => e switch
    {
        Azure.RequestFailedException request => request.Status is 0 or 408 or 429 or >= 500,
        HttpRequestException or SocketException or TimeoutException => true,
        OperationCanceledException => true, // the storage client's own timeout (the caller's cancellation is checked apart)
        // A dropped connection surfaces as an IOException around a SocketException; a disk's own IOException has no such cause.
        AggregateException all => all.InnerExceptions.All(IsOutage),
        _ => e.InnerException is { } inner && IsOutage(inner),
    };
}
