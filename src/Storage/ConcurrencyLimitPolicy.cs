using Azure.Core;
using Azure.Core.Pipeline;

namespace Checkpointing.Storage;

/// <summary>
/// At most N requests of one client in flight; the rest wait their turn in this process. Placed
/// before the retry policy, so waiting here does not count against a try's network timeout: an
/// overloaded account (a fleet of ranks on one Azurite) builds a queue in the clients instead of
/// a queue at the service whose requests time out, are retried, and add to the overload.
/// </summary>
public sealed class ConcurrencyLimitPolicy(int maxConcurrentRequests) : HttpPipelinePolicy
{
    private readonly SemaphoreSlim _slots = new(maxConcurrentRequests, maxConcurrentRequests);

    /// <summary>Waits for a free slot (cancelled by the message's token), then sends the request on and frees the slot when it is done.</summary>
    public override async ValueTask ProcessAsync(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        await _slots.WaitAsync(message.CancellationToken).ConfigureAwait(false);
        try { await ProcessNextAsync(message, pipeline).ConfigureAwait(false); }
        finally { _slots.Release(); }
    }

    /// <summary>The synchronous <see cref="ProcessAsync(HttpMessage, ReadOnlyMemory{HttpPipelinePolicy})"/>: blocks the thread while it waits for a slot.</summary>
    public override void Process(HttpMessage message, ReadOnlyMemory<HttpPipelinePolicy> pipeline)
    {
        _slots.Wait(message.CancellationToken);
        try { ProcessNext(message, pipeline); }
        finally { _slots.Release(); }
    }
}
