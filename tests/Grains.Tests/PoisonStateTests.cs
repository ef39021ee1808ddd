using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// A run state saved before world sizes were bounded owes the deletion of a huge world's shards: a silo that started them all
/// at once ran out of memory, and since the work was in the saved state, the restarted silo died again with no further
/// calls. The grain works through it a few deletions at a time and keeps answering meanwhile.
/// </summary>
public sealed class PoisonStateTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("poison-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A folder store that records the most deletions it had in flight at once.</summary>
    private sealed class DeletionsInFlight(ICheckpointStore inner) : ICheckpointStore
    {
        private int _now;
        private int _most;
        private int _done;

        public int Most => Volatile.Read(ref _most);
        public int Done => Volatile.Read(ref _done);
        public string Description => inner.Description;

        public async Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default)
        {
            var now = Interlocked.Increment(ref _now);
            for (var most = Most; now > most && Interlocked.CompareExchange(ref _most, now, most) != most; most = Most) { }
            try
            {
                await Task.Yield();
                return await inner.DeleteAsync(key, cancellationToken);
            }
            finally
            {
                Interlocked.Decrement(ref _now);
                Interlocked.Increment(ref _done);
            }
        }

        public Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default) => inner.WriteAsync(key, writeContent, cancellationToken);
        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) => inner.OpenReadAsync(key, cancellationToken);
        public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) => inner.ReadRangeAsync(key, offset, destination, cancellationToken);
        public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);
        public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
    }

    [Fact]
    public async Task A_saved_deletion_of_a_huge_world_runs_a_few_at_a_time_while_the_run_answers()
    {
        const int World = 100_000;
        var store = new DeletionsInFlight(new FileSystemStore(_root));
        await using var cluster = await TestClusters.StartAsync(store);
        TestTenancy.ActAs("acme");
        var run = new RunId("acme", "poisoned");
        var storage = cluster.Silos[0].SiloHost.Services.GetRequiredKeyedService<IGrainStorage>(GrainStorage.Runs);
        await storage.WriteStateAsync("run", GrainId.Create("trainingrun", run.Key), new GrainState<RunState>
        {
            State = new RunState
            {
                Created = true, Epoch = 2, CreatedUtc = DateTimeOffset.UtcNow,
                Deletions = [new PendingDeletion($"{run.StorePrefix}/model_0000009", "0badf00d", World)],
            },
        });

        var grain = cluster.Client.GetGrain<ITrainingRunGrain>(run.Key);
        Assert.Equal(2, (await grain.Get()).Epoch); // activates, and starts the owed deletion in the background
        await Eventually.Equal(true, () => store.Done >= World, TimeSpan.FromSeconds(120));

        Assert.InRange(store.Most, 1, 16 * 32); // 16 owed deletions at a time, each 32 shards at a time
        Assert.Equal(2, (await grain.Get()).Epoch);
    }
}
