using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

/// <summary>
/// Incremental saves (docs/format.md#incremental-checkpoints): unchanged tensors are referenced in the earlier checkpoint's shard
/// instead of written again, loads and verifies follow the references and check the referenced bytes.
/// </summary>
public sealed class IncrementalCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("incremental-").FullName;
    private readonly FileSystemStore _store;

    public IncrementalCheckpointTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HostTensor Random(int seed, params long[] shape)
    {
        var tensor = HostTensor.Allocate(TensorDType.F32, shape);
        new Random(seed).NextBytes(tensor.Data);
        return tensor;
    }

    private static OrderedDictionary<string, object?> State(IReadOnlyDictionary<string, HostTensor> tensors) =>
        new() { ["model"] = new OrderedDictionary<string, object?>(tensors.Select(p => KeyValuePair.Create(p.Key, (object?)p.Value))) };

    private async Task<CheckpointManifest> SaveAsync(string name, IReadOnlyDictionary<string, HostTensor> tensors, int shards = 1)
    {
        var earlier = (await RunCheckpoints.ReadCommittedAsync(_store, "")).Committed;
        return await NativeCheckpointWriter.WriteAsync(_store, name, new CheckpointIdentity("run", name, 1), State(tensors), v => v as HostTensor,
            new NativeWriteOptions { ShardCount = shards, ReuseFrom = earlier });
    }

    private async Task<Dictionary<string, HostTensor>> LoadAsync(string name)
    {
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, name);
        var tree = await NativeCheckpointReader.LoadAsync(_store, name, manifest, HostTensor.Allocator);
        return ((OrderedDictionary<string, object?>)tree["model"]!).ToDictionary(p => p.Key, p => (HostTensor)p.Value!);
    }

    private static void AssertSame(IReadOnlyDictionary<string, HostTensor> expected, IReadOnlyDictionary<string, HostTensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, tensor) in expected) Assert.True(tensor.Data.AsSpan().SequenceEqual(actual[key].Data), key);
    }

    private static Dictionary<string, HostTensor> Model(int changedSeed) => new()
    {
        ["stem"] = Random(1, 256, 64), ["res2"] = Random(2, 128, 128), ["res3"] = Random(3, 4096), ["head"] = Random(changedSeed, 64, 10),
    };

    [Fact]
    public async Task Unchanged_tensors_are_referenced_not_rewritten_and_the_checkpoint_loads_whole()
    {
        var first = await SaveAsync("c1", Model(100), shards: 2);
        var secondState = Model(101);
        var second = await SaveAsync("c2", secondState);

        Assert.Equal(2, first.Shards.Count);
        Assert.All(first.Tensors.Values, t => Assert.True(TensorHash.IsWellFormed(t.Hash!)));
        var head = TensorDTypes.ByteLength(TensorDType.F32, [64, 10]);
        Assert.InRange(second.WrittenBytes, head, head + 4096); // the changed head and a safetensors header
        Assert.Equal(first.TensorBytes, second.TensorBytes);
        Assert.Equal(["c1"], second.Shards.Where(s => s.Checkpoint is not null).Select(s => s.Checkpoint!).Distinct());
        AssertSame(secondState, await LoadAsync("c2"));
        AssertSame(Model(100), await LoadAsync("c1"));
        await NativeCheckpointReader.VerifyAsync(_store, "c2", second);
    }

    [Fact]
    public async Task References_name_the_folder_that_holds_the_bytes_not_a_checkpoint_that_only_references_them()
    {
        await SaveAsync("c1", Model(100));
        await SaveAsync("c2", Model(101));
        var third = await SaveAsync("c3", Model(102));

        var stem = third.Shards[third.Tensors["model/stem"].Shard];
        Assert.Equal("c1", stem.Checkpoint);
        var head = third.Shards[third.Tensors["model/head"].Shard];
        Assert.Null(head.Checkpoint);
        AssertSame(Model(102), await LoadAsync("c3"));
    }

    [Fact]
    public async Task A_state_that_did_not_change_writes_no_shard_at_all()
    {
        await SaveAsync("c1", Model(100));
        var again = await SaveAsync("c2", Model(100));

        Assert.Equal(0, again.WrittenBytes);
        Assert.Empty(Directory.GetFiles(Path.Combine(_dir, "c2"), "*.safetensors"));
        AssertSame(Model(100), await LoadAsync("c2"));
    }

    [Fact]
    public async Task Equal_tensors_within_one_state_each_claim_their_own_stored_bytes()
    {
        var twins = new Dictionary<string, HostTensor> { ["ema"] = Random(7, 512), ["model"] = Random(7, 512), ["other"] = Random(8, 512) };
        await SaveAsync("c1", twins);
        var second = await SaveAsync("c2", twins);

        Assert.Equal(0, second.WrittenBytes);
        Assert.Equal(3, second.Tensors.Values.Select(t => (t.Shard, t.DataOffsets[0])).Distinct().Count());
        AssertSame(twins, await LoadAsync("c2"));
    }

    [Fact]
    public async Task Same_bytes_with_another_shape_or_dtype_are_written_again()
    {
        var flat = Random(5, 1024);
        await SaveAsync("c1", new Dictionary<string, HostTensor> { ["w"] = flat });
        var reshaped = new HostTensor(TensorDType.F32, [32, 32], flat.Data);
        var asInts = new HostTensor(TensorDType.I32, [1024], flat.Data);

        var second = await SaveAsync("c2", new Dictionary<string, HostTensor> { ["w"] = reshaped, ["i"] = asInts });

        Assert.All(second.Shards, s => Assert.Null(s.Checkpoint));
    }

    [Fact]
    public async Task A_damaged_referenced_shard_fails_the_load_naming_it()
    {
        await SaveAsync("c1", Model(100));
        var second = await SaveAsync("c2", Model(101));
        var reused = second.Shards.Single(s => s.Checkpoint == "c1");
        var path = Path.Combine(_dir, "c1", reused.Path);
        var bytes = File.ReadAllBytes(path);
        bytes[^5] ^= 0xFF;
        File.WriteAllBytes(path, bytes);

        var error = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadAsync("c2"));
        Assert.Contains($"c1/{reused.Path}", error.Message);
        Assert.Matches("checksum|tensor hash", error.Message); // whichever check the damaged bytes reach first
    }

    [Fact]
    public async Task A_missing_referenced_shard_is_an_error_naming_both_checkpoints()
    {
        await SaveAsync("c1", Model(100));
        var second = await SaveAsync("c2", Model(101));
        File.Delete(Path.Combine(_dir, "c1", second.Shards.Single(s => s.Checkpoint == "c1").Path));

        var error = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadAsync("c2"));
        Assert.Contains("'c2' reuses it from checkpoint 'c1'", error.Message);
    }

    [Fact]
    public async Task A_reference_whose_bytes_do_not_hash_to_the_recorded_hash_fails_the_load()
    {
        await SaveAsync("c1", Model(100));
        var second = await SaveAsync("c2", Model(101));
        var stemHash = second.Tensors["model/stem"].Hash!;
        var manifestPath = Path.Combine(_dir, "c2", ManifestJson.FileName);
        File.WriteAllText(manifestPath, File.ReadAllText(manifestPath).Replace(stemHash, "xxh128:" + new string('0', 32), StringComparison.Ordinal));

        var error = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadAsync("c2"));
        Assert.Contains("tensor hash", error.Message);
        Assert.Contains("model/stem", error.Message);
    }

    [Fact]
    public async Task A_reused_shard_that_went_missing_is_not_built_upon()
    {
        var first = await SaveAsync("c1", Model(100));
        File.Delete(Path.Combine(_dir, "c1", first.Shards[0].Path));

        var second = await SaveAsync("c2", Model(100));

        Assert.All(second.Shards, s => Assert.Null(s.Checkpoint));
        AssertSame(Model(100), await LoadAsync("c2"));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public async Task A_manifest_of_an_older_format_version_still_loads(int version)
    {
        await NativeCheckpointWriter.WriteAsync(_store, "old", new CheckpointIdentity("run", "old", 1), State(Model(100)), v => v as HostTensor);
        var path = Path.Combine(_dir, "old", ManifestJson.FileName);
        File.WriteAllText(path, File.ReadAllText(path).Replace("\"format_version\": 3", $"\"format_version\": {version}", StringComparison.Ordinal));

        Assert.Equal(version, (await NativeCheckpointReader.ReadManifestAsync(_store, "old")).FormatVersion);
        AssertSame(Model(100), await LoadAsync("old"));
    }

    [Fact]
    public async Task A_manifest_reusing_from_itself_or_from_a_bad_name_is_refused()
    {
        await SaveAsync("c1", Model(100));
        var second = await SaveAsync("c2", Model(101));
        var path = Path.Combine(_dir, "c2", ManifestJson.FileName);
        var text = File.ReadAllText(path);

        foreach (var bad in new[] { "c2", "../c1" })
        {
            File.WriteAllText(path, text.Replace("\"checkpoint\": \"c1\"", $"\"checkpoint\": \"{bad}\"", StringComparison.Ordinal));
            var error = await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.ReadManifestAsync(_store, "c2"));
            Assert.Contains("not another checkpoint's name", error.Message);
        }
    }
}
