using Checkpointing.Abstractions;
using Checkpointing.Storage;
using CsCheck;

namespace Checkpointing.Formats.Tests;

/// <summary>The bytes resharded loads buffer at once are bounded for the whole process, first come first served, and cancellable.</summary>
public sealed class ReadBufferBudgetTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("budget-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public void Concurrent_holders_never_hold_more_than_the_budget_and_every_one_is_served()
    {
        Gen.Select(Gen.Int[1, 100], Gen.Int[1, 100].Array[1, 40]).Sample((capacity, wanted) =>
        {
            var budget = new ReadBufferBudget(capacity);
            var sizes = wanted.Select(w => Math.Min(w, capacity)).ToArray();
            long held = 0, most = 0;
            var holders = sizes.Select(async (bytes, i) =>
            {
                await Task.Yield();
                using var lease = await budget.AcquireAsync(bytes, CancellationToken.None);
                var now = Interlocked.Add(ref held, bytes);
                InterlockedMax(ref most, now);
                await Task.Delay(i % 3);
                Interlocked.Add(ref held, -bytes);
            }).ToArray();
            Assert.True(Task.WaitAll(holders, TimeSpan.FromSeconds(30)), "a holder was never served");
            Assert.InRange(most, 1, capacity);
            Assert.InRange(budget.Peak, most, capacity); // granted bytes are counted before their holder runs
        }, iter: 200);
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current && Interlocked.CompareExchange(ref target, value, current) != current) current = Interlocked.Read(ref target);
    }

    [Fact]
    public async Task A_waiter_that_is_cancelled_holds_nothing_and_the_next_waiter_is_served()
    {
        var budget = new ReadBufferBudget(10);
        var first = await budget.AcquireAsync(8, CancellationToken.None);
        using var cancel = new CancellationTokenSource();
        var cancelled = budget.AcquireAsync(5, cancel.Token);
        var next = budget.AcquireAsync(2, CancellationToken.None); // fits now, but waits its turn behind the earlier waiter
        Assert.False(next.IsCompleted);

        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        using (await next.WaitAsync(TimeSpan.FromSeconds(10))) Assert.Equal(10, budget.Peak);
        first.Dispose();
        using var whole = await budget.AcquireAsync(10, CancellationToken.None).WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Throws<ArgumentOutOfRangeException>(() => budget.AcquireAsync(11, CancellationToken.None).GetAwaiter().GetResult());
    }

    /// <summary>
    /// A column split of tensors saved by rows reads many short rows close together: they are coalesced into buffered
    /// ranges, which draw from the process's budget (a load that bypassed it would leave its peak at zero).
    /// </summary>
    [Fact]
    public async Task A_resharded_load_buffers_through_the_shared_budget_and_stays_bit_exact()
    {
        var store = new FileSystemStore(_dir);
        var random = new Random(3);
        long[] shape = [2048, 64];
        var tensors = Enumerable.Range(0, 6).Select(_ =>
        {
            var tensor = HostTensor.Allocate(TensorDType.F32, shape);
            random.NextBytes(tensor.Data);
            return tensor;
        }).ToList();
        var state = new OrderedDictionary<string, object?>(StringComparer.Ordinal)
        {
            ["model"] = tensors.Select((t, i) => KeyValuePair.Create($"t{i}", (object?)HostTensorSlice.Parts(t, Enumerable.Range(0, 2).Select(r => TensorLayout.Split(shape, 0, r, 2)))))
                .ToDictionary(StringComparer.Ordinal),
        };
        await NativeCheckpointWriter.WriteAsync(store, "c", new CheckpointIdentity("budget", "c", 1, 2), state, v => v as ITensorSource, new NativeWriteOptions { ShardCount = 2 });
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, "c");
        var columns = TensorLayout.Split(shape, 1, 0, 2);
        ReadBufferBudget.Shared.ResetPeak();

        var loaded = (OrderedDictionary<string, object?>)(await NativeCheckpointReader.LoadAsync(store, "c", manifest, HostTensor.Allocator,
            new NativeLoadOptions { Layouts = (_, _) => columns }))["model"]!;

        Assert.InRange(ReadBufferBudget.Shared.Peak, 1, ReadBufferBudget.Shared.Capacity);
        for (var i = 0; i < tensors.Count; i++)
        {
            var expected = new byte[shape[0] * 32 * 4];
            for (var row = 0; row < shape[0]; row++) Array.Copy(tensors[i].Data, row * 64 * 4, expected, row * 32 * 4, 32 * 4);
            Assert.Equal(expected, ((HostTensor)loaded[$"t{i}"]!).Data);
        }
    }
}
