using Checkpointing.Abstractions;

namespace Checkpointing.Storage.Tests;

/// <summary>The behaviour every <see cref="ICheckpointStore"/> must have. Each store gets a subclass.</summary>
public abstract class StoreContractTests
{
    protected abstract ICheckpointStore Store { get; }

    private static byte[] Bytes(int n, int seed = 1)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    private async Task<List<StoreEntry>> List(string prefix)
    {
        var list = new List<StoreEntry>();
        await foreach (var e in Store.ListAsync(prefix)) list.Add(e);
        return list;
    }

    [Fact]
    public async Task Written_bytes_read_back_whole_and_by_range()
    {
        var data = Bytes(3 << 20);
        await Store.WriteBytesAsync("run/ckpt/shard", data);
        await using (var s = await Store.OpenReadAsync("run/ckpt/shard"))
        {
            var copy = new MemoryStream();
            await s.CopyToAsync(copy);
            Assert.Equal(data, copy.ToArray());
        }
        var range = new byte[1000];
        await Store.ReadRangeAsync("run/ckpt/shard", 123_456, range);
        Assert.Equal(data.AsSpan(123_456, 1000).ToArray(), range);
        Assert.Equal(data.Length, (await Store.GetEntryAsync("run/ckpt/shard"))!.Length);
    }

    [Fact]
    public async Task Range_past_the_end_fails()
    {
        await Store.WriteBytesAsync("a/b", Bytes(10));
        await Assert.ThrowsAsync<EndOfStreamException>(() => Store.ReadRangeAsync("a/b", 5, new byte[10]));
    }

    [Fact]
    public async Task A_failed_write_leaves_nothing_and_keeps_the_previous_object()
    {
        await Store.WriteTextAsync("a/obj", "old");
        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync("a/obj", async (s, ct) =>
        {
            await s.WriteAsync(Bytes(1 << 20), ct);
            throw new IOException("disk on fire");
        }));
        Assert.Equal("old", await Store.ReadTextAsync("a/obj"));
        Assert.Equal(["a/obj"], (await List("a/")).Select(e => e.Key));

        await Assert.ThrowsAsync<IOException>(() => Store.WriteAsync("a/new", (_, _) => throw new IOException("no")));
        Assert.Null(await Store.GetEntryAsync("a/new"));
    }

    [Fact]
    public async Task A_cancelled_write_is_not_visible()
    {
        using var cts = new CancellationTokenSource();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => Store.WriteAsync("c/x", async (s, ct) =>
        {
            await s.WriteAsync(Bytes(100), ct);
            cts.Cancel();
        }, cts.Token));
        Assert.Null(await Store.GetEntryAsync("c/x"));
    }

    [Fact]
    public async Task A_write_in_flight_is_not_visible_until_its_callback_returns()
    {
        await Store.WriteTextAsync("f/obj", "old");
        StoreEntry? during = null;
        string? textDuring = null;
        await Store.WriteAsync("f/obj", async (s, ct) =>
        {
            await s.WriteAsync(Bytes(1 << 20), ct);
            during = await Store.GetEntryAsync("f/obj", ct);
            textDuring = await Store.ReadTextAsync("f/obj", ct);
        });
        Assert.Equal(3, during!.Length);
        Assert.Equal("old", textDuring);
        Assert.Equal(1 << 20, (await Store.GetEntryAsync("f/obj"))!.Length);
    }

    [Fact]
    public async Task Concurrent_writes_of_different_keys_all_land()
    {
        var keys = Enumerable.Range(0, 64).Select(i => $"p/k{i:D2}").ToList();
        await Parallel.ForEachAsync(keys, async (key, ct) => await Store.WriteTextAsync(key, key, ct));
        Assert.Equal(keys, (await List("p/")).Select(e => e.Key));
        foreach (var key in keys) Assert.Equal(key, await Store.ReadTextAsync(key));
    }

    [Fact]
    public async Task Overwrite_replaces_whole_object()
    {
        await Store.WriteBytesAsync("o/x", Bytes(1000, 1));
        await Store.WriteBytesAsync("o/x", Bytes(10, 2));
        Assert.Equal(Bytes(10, 2), await ReadAll("o/x"));
    }

    private async Task<byte[]> ReadAll(string key)
    {
        await using var s = await Store.OpenReadAsync(key);
        var m = new MemoryStream();
        await s.CopyToAsync(m);
        return m.ToArray();
    }

    [Fact]
    public async Task List_filters_by_prefix_in_ordinal_order()
    {
        await Store.WriteTextAsync("r1/model_0000019/manifest.json", "{}");
        await Store.WriteTextAsync("r1/model_0000009/manifest.json", "{}");
        await Store.WriteTextAsync("r1/last_checkpoint", "x");
        await Store.WriteTextAsync("r2/model_0000009/manifest.json", "{}");
        Assert.Equal(["r1/last_checkpoint", "r1/model_0000009/manifest.json", "r1/model_0000019/manifest.json"], (await List("r1/")).Select(e => e.Key));
        Assert.Equal(["r1/model_0000009/manifest.json", "r1/model_0000019/manifest.json"], (await List("r1/model_")).Select(e => e.Key));
        Assert.Empty(await List("nothing/"));
    }

    [Fact]
    public async Task Delete_reports_whether_something_was_deleted()
    {
        await Store.WriteTextAsync("d/x", "1");
        Assert.True(await Store.DeleteAsync("d/x"));
        Assert.False(await Store.DeleteAsync("d/x"));
        Assert.Null(await Store.GetEntryAsync("d/x"));
        await Assert.ThrowsAsync<StoreObjectNotFoundException>(() => Store.OpenReadAsync("d/x"));
    }

    [Theory]
    [InlineData("../x")]
    [InlineData("a/../../x")]
    [InlineData("/etc/passwd")]
    [InlineData("a//b")]
    [InlineData("a\\b")]
    [InlineData(".hidden")]
    [InlineData("")]
    public async Task Bad_keys_are_refused_everywhere(string key)
    {
        await Assert.ThrowsAsync<ArgumentException>(() => Store.WriteTextAsync(key, "x"));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.OpenReadAsync(key));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.GetEntryAsync(key));
        await Assert.ThrowsAsync<ArgumentException>(() => Store.DeleteAsync(key));
    }
}

public sealed class FileSystemStoreContractTests : StoreContractTests, IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("fsstore-").FullName;
    private readonly FileSystemStore _store;

    public FileSystemStoreContractTests() => _store = new FileSystemStore(_dir);

    protected override ICheckpointStore Store => _store;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task A_write_in_flight_is_a_hidden_temporary_file_beside_the_target()
    {
        string[] during = [];
        await _store.WriteAsync("run/obj", (s, ct) =>
        {
            s.Write([1, 2, 3]);
            during = Directory.GetFiles(Path.Combine(_dir, "run"));
            return Task.CompletedTask;
        });
        var temp = Assert.Single(during);
        Assert.StartsWith(".obj.tmp-", Path.GetFileName(temp));
        Assert.Equal([Path.Combine(_dir, "run", "obj")], Directory.GetFiles(Path.Combine(_dir, "run")));
    }

    [Fact]
    public async Task Temporary_files_left_by_a_crash_are_not_listed()
    {
        Directory.CreateDirectory(Path.Combine(_dir, "r"));
        File.WriteAllText(Path.Combine(_dir, "r", ".manifest.json.tmp-123"), "partial");
        await _store.WriteTextAsync("r/real", "x");
        var keys = new List<string>();
        await foreach (var e in _store.ListAsync("")) keys.Add(e.Key);
        Assert.Equal(["r/real"], keys);
    }
}

public sealed class MemoryStoreContractTests : StoreContractTests
{
    protected override ICheckpointStore Store { get; } = new MemoryStore();
}
