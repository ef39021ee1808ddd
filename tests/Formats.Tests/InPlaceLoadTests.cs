using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

/// <summary>
/// Loads into existing memory (a model's own tensors): every shard verifies before any destination
/// changes, placed tensors are never allocated twice, and stores that are costly to re-read are read
/// once into fresh tensors instead.
/// </summary>
public sealed class InPlaceLoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("in-place-").FullName;
    private readonly FileSystemStore _store;

    public InPlaceLoadTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HostTensor Random(int seed, params long[] shape)
    {
        var tensor = HostTensor.Allocate(TensorDType.F32, shape);
        new Random(seed).NextBytes(tensor.Data);
        return tensor;
    }

    /// <summary>Four tensors over two shards, and for each an all-zero destination of the same shape.</summary>
    private async Task<(CheckpointManifest Manifest, Dictionary<string, HostTensor> Saved, Dictionary<string, HostTensor> Destinations)> SaveAsync(ICheckpointStore store)
    {
        var saved = new Dictionary<string, HostTensor>
        {
            ["a"] = Random(1, 64, 32), ["b"] = Random(2, 1000), ["c"] = Random(3, 8, 8, 8), ["d"] = Random(4, 3),
        };
        var state = new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?>(saved.Select(p => KeyValuePair.Create(p.Key, (object?)p.Value))) };
        var manifest = await NativeCheckpointWriter.WriteAsync(store, "c1", new CheckpointIdentity("run", "c1", 1), state, v => v as HostTensor, new NativeWriteOptions { ShardCount = 2 });
        Assert.Equal(2, manifest.Shards.Count);
        var destinations = saved.ToDictionary(p => $"model/{p.Key}", p => HostTensor.Allocate(p.Value.DType, p.Value.Shape));
        return (manifest, saved, destinations);
    }

    private static TensorPlacement Into(Dictionary<string, HostTensor> destinations, params string[] keys) =>
        (key, _, _) => keys.Contains(key) ? (destinations[key], destinations[key]) : null;

    [Fact]
    public async Task Placed_tensors_are_filled_in_their_own_memory_and_only_the_rest_is_allocated()
    {
        var (manifest, saved, destinations) = await SaveAsync(_store);
        var allocated = new List<string>();
        TensorAllocator counting = (key, dtype, shape) =>
        {
            lock (allocated) allocated.Add(key);
            return HostTensor.Allocator(key, dtype, shape);
        };

        var tree = await NativeCheckpointReader.LoadAsync(_store, "c1", manifest, counting,
            new NativeLoadOptions { PlaceInto = Into(destinations, "model/a", "model/b", "model/c") });

        Assert.Equal(["model/d"], allocated);
        var model = (OrderedDictionary<string, object?>)tree["model"]!;
        foreach (var key in new[] { "a", "b", "c" })
        {
            Assert.Same(destinations[$"model/{key}"], model[key]);
            Assert.Equal(saved[key].Data, destinations[$"model/{key}"].Data);
        }
        Assert.Equal(saved["d"].Data, ((HostTensor)model["d"]!).Data);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    public async Task A_damaged_shard_leaves_every_destination_untouched(int damagedShard)
    {
        var (manifest, _, destinations) = await SaveAsync(_store);
        var shard = _store.PathOf($"c1/{manifest.Shards[damagedShard].Path}");
        var bytes = File.ReadAllBytes(shard);
        bytes[^1] ^= 0x40; // the last tensor byte: a single pass would have filled every other tensor first
        File.WriteAllBytes(shard, bytes);

        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.LoadAsync(_store, "c1", manifest, HostTensor.Allocator,
            new NativeLoadOptions { PlaceInto = Into(destinations, destinations.Keys.ToArray()) }));

        Assert.Equal("checksum", e.Check);
        Assert.Contains(manifest.Shards[damagedShard].Path, e.Message);
        Assert.All(destinations.Values, d => Assert.All(d.Data, b => Assert.Equal(0, b)));
    }

    [Fact]
    public async Task A_store_that_is_costly_to_reread_is_read_once_into_fresh_tensors()
    {
        var store = new ReadCountingStore(new MemoryStore());
        var (manifest, saved, destinations) = await SaveAsync(store);
        store.BytesRead = 0;

        var tree = await NativeCheckpointReader.LoadAsync(store, "c1", manifest, HostTensor.Allocator,
            new NativeLoadOptions { PlaceInto = Into(destinations, destinations.Keys.ToArray()) });

        Assert.Equal(manifest.Shards.Sum(s => s.Bytes), store.BytesRead);
        Assert.All(destinations.Values, d => Assert.All(d.Data, b => Assert.Equal(0, b)));
        var model = (OrderedDictionary<string, object?>)tree["model"]!;
        foreach (var (key, tensor) in saved) Assert.Equal(tensor.Data, ((HostTensor)model[key]!).Data);
    }

    [Theory]
    [InlineData(-1)] // the last data byte
    [InlineData(20)] // inside the header JSON: reported as the checksum mismatch it is
    public async Task A_damaged_shard_read_once_fails_on_its_checksum(int at)
    {
        var store = new ReadCountingStore(new MemoryStore());
        var (manifest, _, _) = await SaveAsync(store);
        var key = $"c1/{manifest.Shards[1].Path}";
        var bytes = new byte[manifest.Shards[1].Bytes];
        await store.ReadRangeAsync(key, 0, bytes);
        bytes[at < 0 ? bytes.Length + at : at] ^= 0x08;
        await store.WriteAsync(key, (stream, ct) => stream.WriteAsync(bytes, ct).AsTask());

        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.LoadAsync(store, "c1", manifest, HostTensor.Allocator));

        Assert.Equal("checksum", e.Check);
        Assert.Contains(manifest.Shards[1].Path, e.Message);
    }

    [Fact]
    public async Task A_cheap_store_is_read_twice_verify_then_fill()
    {
        var store = new ReadCountingStore(new MemoryStore(), rereadIsCheap: true);
        var (manifest, _, destinations) = await SaveAsync(store);
        store.BytesRead = 0;

        await NativeCheckpointReader.LoadAsync(store, "c1", manifest, HostTensor.Allocator,
            new NativeLoadOptions { PlaceInto = Into(destinations, destinations.Keys.ToArray()) });

        var tensorBytes = manifest.Tensors.Values.Sum(t => t.DataOffsets[1] - t.DataOffsets[0]);
        Assert.Equal(manifest.Shards.Sum(s => s.Bytes) + tensorBytes, store.BytesRead);
    }

    [Fact]
    public async Task A_failure_after_every_checksum_verified_says_the_destinations_hold_part_of_the_checkpoint()
    {
        var store = new ReadCountingStore(new MemoryStore(), rereadIsCheap: true) { FailRangeReads = true };
        var (manifest, _, destinations) = await SaveAsync(store);

        var e = await Assert.ThrowsAsync<IOException>(() => NativeCheckpointReader.LoadAsync(store, "c1", manifest, HostTensor.Allocator,
            new NativeLoadOptions { PlaceInto = Into(destinations, destinations.Keys.ToArray()) }));

        Assert.Contains("every checksum verified", e.Message);
        Assert.Contains("hold part of this checkpoint", e.Message);
        Assert.Contains("disk went away", e.Message);
    }

    /// <summary>A store that counts the bytes its readers take, and says whether re-reading is cheap as told.</summary>
    private sealed class ReadCountingStore(ICheckpointStore inner, bool rereadIsCheap = false) : ICheckpointStore
    {
        private long _bytesRead;

        public long BytesRead { get => Interlocked.Read(ref _bytesRead); set => Interlocked.Exchange(ref _bytesRead, value); }
        public string Description => inner.Description;
        public bool RereadIsCheap => rereadIsCheap;

        public Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(key, writeContent, cancellationToken);

        public async Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
        {
            var stream = await inner.OpenReadAsync(key, cancellationToken);
            var all = new MemoryStream();
            await stream.CopyToAsync(all, cancellationToken);
            await stream.DisposeAsync();
            Interlocked.Add(ref _bytesRead, all.Length);
            all.Position = 0;
            return all;
        }

        /// <summary>Range reads of shards fail, as a disk failing between the verify and the fill pass would.</summary>
        public bool FailRangeReads { get; init; }

        public async Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default)
        {
            if (FailRangeReads && key.Contains("shard-", StringComparison.Ordinal)) throw new IOException("disk went away");
            await inner.ReadRangeAsync(key, offset, destination, cancellationToken);
            Interlocked.Add(ref _bytesRead, destination.Length);
        }

        public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);
        public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }
}
