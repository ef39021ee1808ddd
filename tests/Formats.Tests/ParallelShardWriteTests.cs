using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

/// <summary>Shards of one checkpoint are written concurrently, with the guarantees of a sequential write.</summary>
public sealed class ParallelShardWriteTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);
    private readonly string _dir = Directory.CreateTempSubdirectory("parallel-shards-").FullName;
    private readonly FileSystemStore _store;

    public ParallelShardWriteTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Eight tensors of different sizes, so that the byte-balanced plan is not the state's order.</summary>
    private static OrderedDictionary<string, object?> State()
    {
        var state = new OrderedDictionary<string, object?>();
        for (var i = 0; i < 8; i++)
        {
            var t = HostTensor.Allocate(TensorDType.F32, [1000 * ((i * 5 % 8) + 1)]);
            Random.Shared.NextBytes(t.Data);
            state[$"t{i}"] = t;
        }
        return state;
    }

    private static Task<CheckpointManifest> Write(ICheckpointStore store, OrderedDictionary<string, object?> state, int? maxParallel = null,
        IProgress<long>? progress = null, CancellationToken cancellationToken = default) =>
        NativeCheckpointWriter.WriteAsync(store, "ck", new CheckpointIdentity("local", "ck", 1), state, v => v as HostTensor,
            new NativeWriteOptions { ShardCount = 4, MaxParallelShards = maxParallel, Progress = progress }, cancellationToken);

    [Fact]
    public async Task Four_shards_written_at_once_round_trip_and_shard_i_holds_plan_i()
    {
        var state = State();
        // Every shard write waits until all four are in flight: a sequential writer would time out here.
        var store = new HookedStore(_store, (_, inFlight, _) => inFlight.WaitUntil(4));
        var progress = new UnsafeTotal();

        var manifest = await Write(store, state, maxParallel: 4, progress);

        Assert.Equal(4, store.Writes.MaxInFlight);
        var plan = ShardPlanner.Split(state.Select(kv => (kv.Key, Tensor: (HostTensor)kv.Value!)).ToList(), 4, t => t.Key, t => t.Tensor.Data.Length);
        Assert.Equal(4, manifest.Shards.Count);
        for (var i = 0; i < 4; i++)
        {
            Assert.StartsWith($"shard-{i:D5}-of-00004-", manifest.Shards[i].Path, StringComparison.Ordinal);
            var (tensors, _) = SafetensorsFile.Read(Path.Combine(_dir, "ck", manifest.Shards[i].Path), HostTensor.Allocator);
            Assert.Equal(plan[i].Select(t => t.Key).Order(StringComparer.Ordinal), tensors.Keys.Order(StringComparer.Ordinal));
            foreach (var (key, tensor) in plan[i])
            {
                Assert.Equal(i, manifest.Tensors[key].Shard);
                Assert.Equal(tensor.Data, ((HostTensor)tensors[key]!).Data);
            }
        }
        Assert.Equal(state.Keys, manifest.Tensors.Keys); // the index keeps the state's order

        var loaded = await NativeCheckpointReader.LoadAsync(_store, "ck", await NativeCheckpointReader.ReadManifestAsync(_store, "ck"), HostTensor.Allocator);
        Assert.Equal(state.Keys, loaded.Keys);
        foreach (var (key, tensor) in state) Assert.Equal(((HostTensor)tensor!).Data, ((HostTensor)loaded[key]!).Data);
        Assert.Equal(state.Values.Sum(t => (long)((HostTensor)t!).Data.Length), progress.Total);
        Assert.False(progress.Overlapped, "progress reports overlapped");
    }

    [Fact]
    public async Task The_default_writes_shards_concurrently_up_to_the_processor_count()
    {
        var expected = Math.Min(4, Environment.ProcessorCount);
        var store = new HookedStore(_store, (_, inFlight, _) => inFlight.WaitUntil(expected));
        await Write(store, State());
        Assert.Equal(expected, store.Writes.MaxInFlight);
    }

    [Fact]
    public async Task A_failure_on_the_third_shard_leaves_no_shard_and_no_manifest_and_is_the_error_thrown()
    {
        using var failed = new ManualResetEventSlim();
        var store = new HookedStore(_store, (key, inFlight, _) =>
        {
            if (key.Contains("/shard-00002-", StringComparison.Ordinal))
            {
                inFlight.WaitUntil(4); // all started: none is skipped for the failure
                failed.Set();
                throw new IOException("disk full on shard 2");
            }
            // The other shards ignore the cancellation and finish after the failure: they must be deleted too.
            if (!failed.Wait(Patience)) throw new TimeoutException("shard 2 never failed");
            Thread.Sleep(100);
            return Task.CompletedTask;
        }, ignoreCancellation: true);

        var e = await Assert.ThrowsAsync<IOException>(() => Write(store, State(), maxParallel: 4));

        Assert.Equal("disk full on shard 2", e.Message);
        Assert.Equal(3, store.Completed.Count); // shards 0, 1 and 3 were written, after the failure
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories));
        await Assert.ThrowsAsync<CheckpointNotFoundException>(() => NativeCheckpointReader.ReadManifestAsync(_store, "ck"));
    }

    [Fact]
    public async Task Cancelled_between_two_shards_it_throws_and_leaves_no_shard()
    {
        using var cancel = new CancellationTokenSource();
        // One shard at a time; the cancellation arrives while shard 1 is written, which finishes regardless.
        var store = new HookedStore(_store, (key, _, _) =>
        {
            if (key.Contains("/shard-00001-", StringComparison.Ordinal)) cancel.Cancel();
            return Task.CompletedTask;
        }, ignoreCancellation: true);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Write(store, State(), maxParallel: 1, cancellationToken: cancel.Token));

        Assert.Equal(2, store.Completed.Count); // shards 0 and 1; 2 and 3 were never started
        Assert.Empty(Directory.EnumerateFiles(_dir, "*", SearchOption.AllDirectories));
    }

    /// <summary>
    /// Counts writes in flight and lets a shard write wait, on its own thread, until a number of them have been in flight at
    /// once. The wait blocks that thread rather than awaiting: the writer runs each shard on a thread of its own, and an await
    /// would need a thread-pool thread to resume. It waits for the high-water mark, not the current count: the last writer to
    /// arrive passes at once, may finish and leave before a woken waiter gets the lock back, and a waiter that then saw one
    /// fewer in flight would wait for a peer that never comes (CI saw "1 of 2 in flight after 30 s" under load).
    /// </summary>
    private sealed class InFlight
    {
        private readonly object _gate = new();
        private int _now;

        public int MaxInFlight { get; private set; }

        /// <summary>Returns once <paramref name="count"/> writes have been in flight at once; throws <see cref="TimeoutException"/> after <see cref="Patience"/>.</summary>
        public Task WaitUntil(int count)
        {
            var deadline = DateTime.UtcNow + Patience;
            lock (_gate)
            {
                while (MaxInFlight < count)
                {
                    var left = deadline - DateTime.UtcNow;
                    if (left <= TimeSpan.Zero || !Monitor.Wait(_gate, left) && MaxInFlight < count)
                        throw new TimeoutException($"at most {MaxInFlight} of {count} shard writes in flight at once after {Patience.TotalSeconds} s");
                }
            }
            return Task.CompletedTask;
        }

        public void Enter()
        {
            lock (_gate)
            {
                MaxInFlight = Math.Max(MaxInFlight, ++_now);
                Monitor.PulseAll(_gate);
            }
        }

        public void Leave()
        {
            lock (_gate) _now--;
        }
    }

    /// <summary>A store that runs a hook before each write of a shard (to delay or fail it) and records the writes that completed.</summary>
    private sealed class HookedStore(ICheckpointStore inner, Func<string, InFlight, CancellationToken, Task> beforeShardWrite, bool ignoreCancellation = false) : ICheckpointStore
    {
        public InFlight Writes { get; } = new();

        public System.Collections.Concurrent.ConcurrentBag<string> Completed { get; } = [];

        public string Description => inner.Description;

        public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
        {
            if (!StoreLayout.IsShard(Path.GetFileName(key)))
            {
                await inner.WriteAsync(key, writeContent, cancellationToken);
                return;
            }
            Writes.Enter();
            try
            {
                var ct = ignoreCancellation ? CancellationToken.None : cancellationToken;
                await beforeShardWrite(key, Writes, ct);
                await inner.WriteAsync(key, writeContent, ct);
                Completed.Add(key);
            }
            finally
            {
                Writes.Leave();
            }
        }

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) => inner.OpenReadAsync(key, cancellationToken);
        public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) => inner.ReadRangeAsync(key, offset, destination, cancellationToken);
        public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);
        public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }

    /// <summary>A running total that is not thread-safe, as a caller's would be; notices if two reports overlap.</summary>
    private sealed class UnsafeTotal : IProgress<long>
    {
        private int _inside;

        public long Total { get; private set; }

        public bool Overlapped { get; private set; }

        public void Report(long value)
        {
            if (Interlocked.Increment(ref _inside) > 1) Overlapped = true;
            Thread.Sleep(20); // widen the window in which an unserialized report would overlap
            Total += value;
            Interlocked.Decrement(ref _inside);
        }
    }
}
