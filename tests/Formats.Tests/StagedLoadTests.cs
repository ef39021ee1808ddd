using Checkpointing.Abstractions;
using Checkpointing.Storage;
using Checkpointing.TestSupport;

namespace Checkpointing.Formats.Tests;

/// <summary>
/// A load reads every shard once, end to end, into fresh tensors and verifies it on the way; nothing it returns exists
/// before every read has succeeded, so the caller's model changes only after the last byte was read and checked.
/// </summary>
public sealed class StagedLoadTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("staged-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HostTensor Random(int seed, params long[] shape)
    {
        var tensor = HostTensor.Allocate(TensorDType.F32, shape);
        new Random(seed).NextBytes(tensor.Data);
        return tensor;
    }

    /// <summary>Four tensors over two shards.</summary>
    private static async Task<(CheckpointManifest Manifest, Dictionary<string, HostTensor> Saved)> SaveAsync(ICheckpointStore store)
    {
        var saved = new Dictionary<string, HostTensor>
        {
            ["a"] = Random(1, 64, 32), ["b"] = Random(2, 1000), ["c"] = Random(3, 8, 8, 8), ["d"] = Random(4, 3),
        };
        var state = new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?>(saved.Select(p => KeyValuePair.Create(p.Key, (object?)p.Value))) };
        var manifest = await NativeCheckpointWriter.WriteAsync(store, "c1", new CheckpointIdentity("run", "c1", 1), state, v => v as HostTensor, new NativeWriteOptions { ShardCount = 2 });
        Assert.Equal(2, manifest.Shards.Count);
        return (manifest, saved);
    }

    private ICheckpointStore StoreOf(string kind) => kind == "folder" ? new FileSystemStore(_dir) : new MemoryStore();

    [Theory]
    [InlineData("folder")]
    [InlineData("memory")]
    public async Task Every_shard_is_read_once_into_fresh_tensors(string kind)
    {
        var store = new ReadCountingStore(StoreOf(kind));
        var (manifest, saved) = await SaveAsync(store);
        store.BytesTaken = 0;
        var allocated = new List<string>();
        TensorAllocator counting = (key, dtype, shape) =>
        {
            lock (allocated) allocated.Add(key);
            return HostTensor.Allocator(key, dtype, shape);
        };

        var tree = await NativeCheckpointReader.LoadAsync(store, "c1", manifest, counting);

        Assert.Equal(manifest.Shards.Sum(s => s.Bytes), store.BytesTaken);
        Assert.Equal(saved.Keys.Select(k => $"model/{k}").Order(), allocated.Order());
        var model = (OrderedDictionary<string, object?>)tree["model"]!;
        foreach (var (key, tensor) in saved) Assert.Equal(tensor.Data, ((HostTensor)model[key]!).Data);
    }

    [Theory]
    [InlineData(-1)] // the last data byte
    [InlineData(20)] // inside the header JSON: reported as the checksum mismatch it is
    public async Task A_damaged_shard_read_once_fails_on_its_checksum(int at)
    {
        var store = new ReadCountingStore(new MemoryStore());
        var (manifest, _) = await SaveAsync(store);
        var key = $"c1/{manifest.Shards[1].Path}";
        var bytes = new byte[manifest.Shards[1].Bytes];
        await store.ReadRangeAsync(key, 0, bytes);
        bytes[at < 0 ? bytes.Length + at : at] ^= 0x08;
        await store.WriteAsync(key, (stream, ct) => stream.WriteAsync(bytes, ct).AsTask());

        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.LoadAsync(store, "c1", manifest, HostTensor.Allocator));

        Assert.Equal("checksum", e.Check);
        Assert.Contains(manifest.Shards[1].Path, e.Message);
    }
}
