namespace Checkpointing.Formats;

/// <summary>
/// The bytes of pooled buffers that resharded loads (<see cref="SliceReader"/>) may hold at once, across every load of the
/// process: each batch of ranged reads waits until its buffers fit, first come first served. Without it a load held up to
/// 32 MiB per chunk, eight chunks per tensor and a tensor per core at once (about 4 GiB on 16 cores) on top of the tensors
/// it fills. A waiter holds nothing while it waits, so the batches in flight always finish and free their bytes.
/// </summary>
public sealed class ReadBufferBudget
{
    /// <summary>The budget every <see cref="SliceReader"/> draws from: twice the largest batch, so two batches read at once.</summary>
    public static ReadBufferBudget Shared { get; } = new(2 * SliceReader.MaxBatchBytes);

    private readonly Lock _gate = new();
    private readonly LinkedList<(long Bytes, TaskCompletionSource Granted)> _waiting = new();
    private long _inUse;
    private long _peak;

    /// <summary>A budget of <paramref name="capacity"/> bytes, none of them held.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="capacity"/> is zero or negative.</exception>
    public ReadBufferBudget(long capacity) => Capacity = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "a budget holds at least one byte");

    /// <summary>The most bytes held at once; also the largest single request <see cref="AcquireAsync"/> accepts.</summary>
    public long Capacity { get; }

    /// <summary>The most bytes held at once since the budget was made or <see cref="ResetPeak"/> was called.</summary>
    public long Peak
    {
        get { lock (_gate) return _peak; }
    }

    /// <summary>Starts a new measurement of <see cref="Peak"/> from the bytes held now.</summary>
    public void ResetPeak()
    {
        lock (_gate) _peak = _inUse;
    }

    /// <summary>Waits until <paramref name="bytes"/> fit (after every earlier waiter), and holds them until the lease is disposed.</summary>
    public async Task<IDisposable> AcquireAsync(long bytes, CancellationToken ct)
    {
        if (bytes < 0 || bytes > Capacity) throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"a batch must fit the budget of {Capacity} bytes");
        if (bytes == 0) return new Lease(this, 0); // reads straight into their destination buffer nothing: they wait behind nobody
        LinkedListNode<(long, TaskCompletionSource)> node;
        lock (_gate)
        {
            if (_waiting.Count == 0 && _inUse + bytes <= Capacity)
            {
                Take(bytes);
                return new Lease(this, bytes);
            }
            node = _waiting.AddLast((bytes, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)));
        }
        var granted = node.Value.Item2;
        await using (ct.Register(() =>
        {
            List<TaskCompletionSource> ready;
            lock (_gate)
            {
                if (node.List is null) return; // granted meanwhile: the caller owns the bytes and releases them
                _waiting.Remove(node);
                ready = GrantWaiters(); // the ones behind it may fit now
            }
            granted.TrySetCanceled(ct);
            foreach (var waiter in ready) waiter.TrySetResult();
        }))
        {
            await granted.Task.ConfigureAwait(false);
        }
        return new Lease(this, bytes);
    }

    private void Take(long bytes)
    {
        _inUse += bytes;
        _peak = Math.Max(_peak, _inUse);
    }

    private void Release(long bytes)
    {
        List<TaskCompletionSource> ready;
        lock (_gate)
        {
            _inUse -= bytes;
            ready = GrantWaiters();
        }
        foreach (var waiter in ready) waiter.TrySetResult();
    }

    /// <summary>Under the gate: takes the bytes of the waiters at the head that fit, in order; the caller completes them outside it.</summary>
    private List<TaskCompletionSource> GrantWaiters()
    {
        var ready = new List<TaskCompletionSource>();
        while (_waiting.First is { } first && _inUse + first.Value.Bytes <= Capacity)
        {
            Take(first.Value.Bytes);
            _waiting.RemoveFirst();
            ready.Add(first.Value.Granted);
        }
        return ready;
    }

    private sealed class Lease(ReadBufferBudget budget, long bytes) : IDisposable
    {
        private int _released;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _released, 1) == 0) budget.Release(bytes);
        }
    }
}
