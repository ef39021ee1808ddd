using System.Text;
using Checkpointing.Abstractions;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

public sealed class NativeCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("native-ckpt-").FullName;
    private readonly FileSystemStore _store;

    public NativeCheckpointTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HostTensor Filled(TensorDType dtype, params long[] shape)
    {
        var t = HostTensor.Allocate(dtype, shape);
        Random.Shared.NextBytes(t.Data);
        return t;
    }

    private static OrderedDictionary<string, object?> SampleState() => new()
    {
        ["model"] = new OrderedDictionary<string, object?>
        {
            ["layer1.weight"] = Filled(TensorDType.F32, 16, 8),
            ["layer1.bias"] = Filled(TensorDType.F32, 16),
            ["bn.num_batches_tracked"] = Filled(TensorDType.I64),
            ["half"] = Filled(TensorDType.F16, 4, 4),
            ["brain"] = Filled(TensorDType.BF16, 3),
            ["mask"] = Filled(TensorDType.BOOL, 5),
        },
        ["optimizer"] = new OrderedDictionary<string, object?>
        {
            ["state"] = new OrderedDictionary<string, object?> { ["0"] = new OrderedDictionary<string, object?> { ["momentum_buffer"] = Filled(TensorDType.F64, 16, 8), ["step"] = 7L } },
            ["param_groups"] = new List<object?> { new OrderedDictionary<string, object?> { ["lr"] = 0.1, ["momentum"] = 0.9, ["nesterov"] = false, ["params"] = new List<object?> { 0L, 1L } } },
        },
        ["iteration"] = 99L,
        ["whole_float"] = 2.0,
        ["nan"] = double.NaN,
        ["neg_inf"] = double.NegativeInfinity,
        ["name/with/slashes"] = new List<object?> { "a", null, true, Filled(TensorDType.U8, 2) },
    };

    private async Task<Formats.CheckpointIdentity> Write(string name, OrderedDictionary<string, object?> state, int shards = 1)
    {
        var id = new CheckpointIdentity("local", name, 99, 1);
        await NativeCheckpointWriter.WriteAsync(_store, name, id, state, v => v as HostTensor, new NativeWriteOptions { ShardCount = shards });
        return id;
    }

    private async Task<OrderedDictionary<string, object?>> Read(string name)
    {
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, name);
        return await NativeCheckpointReader.LoadAsync(_store, name, manifest, HostTensor.Allocator);
    }

    private static void AssertSameTree(object? expected, object? actual)
    {
        switch (expected)
        {
            case HostTensor e:
                var a = Assert.IsType<HostTensor>(actual);
                Assert.Equal(e.DType, a.DType);
                Assert.Equal(e.Shape, a.Shape);
                Assert.Equal(e.Data, a.Data);
                break;
            case OrderedDictionary<string, object?> e:
                var ad = Assert.IsType<OrderedDictionary<string, object?>>(actual);
                Assert.Equal(e.Keys, ad.Keys);
                foreach (var (k, v) in e) AssertSameTree(v, ad[k]);
                break;
            case List<object?> e:
                var al = Assert.IsType<List<object?>>(actual);
                Assert.Equal(e.Count, al.Count);
                for (var i = 0; i < e.Count; i++) AssertSameTree(e[i], al[i]);
                break;
            case double d:
                Assert.Equal(BitConverter.DoubleToInt64Bits(d), BitConverter.DoubleToInt64Bits(Assert.IsType<double>(actual)));
                break;
            default:
                Assert.Equal(expected, actual);
                break;
        }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public async Task Nested_state_round_trips_exactly_with_types_and_key_order(int shards)
    {
        var state = SampleState();
        await Write("model_0000099", state, shards);
        AssertSameTree(state, await Read("model_0000099"));

        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, "model_0000099");
        Assert.Equal(shards, manifest.Shards.Count);
        Assert.Equal(99, manifest.Iteration);
        Assert.Contains("name~1with~1slashes/3", manifest.Tensors.Keys);
        Assert.All(manifest.Shards, s => Assert.StartsWith("crc64:", s.Checksum));
    }

    [Fact]
    public async Task Shards_are_balanced_by_bytes()
    {
        var state = new OrderedDictionary<string, object?>();
        for (var i = 0; i < 8; i++) state[$"t{i}"] = Filled(TensorDType.F32, 1024 * (i + 1));
        await Write("balanced", state, shards: 4);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, "balanced");
        var sizes = manifest.Shards.Select(s => s.Bytes).ToArray();
        Assert.True(sizes.Max() - sizes.Min() <= 4096 * 2 + 1024, $"unbalanced shards: {string.Join(", ", sizes)}");
    }

    [Fact]
    public async Task Resaving_a_name_replaces_it_and_removes_the_old_shards()
    {
        await Write("model_final", SampleState(), 2);
        var second = SampleState();
        await Write("model_final", second, 1);
        AssertSameTree(second, await Read("model_final"));
        var files = Directory.GetFiles(Path.Combine(_dir, "model_final")).Select(Path.GetFileName).ToArray();
        Assert.Equal(2, files.Length); // one shard + manifest
    }

    [Fact]
    public async Task Truncated_shard_fails_naming_the_shard_and_the_length_check()
    {
        await Write("c", SampleState());
        var shard = Directory.GetFiles(Path.Combine(_dir, "c"), "shard-*").Single();
        using (var f = new FileStream(shard, FileMode.Open)) f.SetLength(f.Length - 10);
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => Read("c"));
        Assert.Equal("length", e.Check);
        Assert.Contains(Path.GetFileName(shard), e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public async Task Flipped_byte_fails_naming_the_shard_and_the_checksum()
    {
        await Write("c", SampleState());
        var shard = Directory.GetFiles(Path.Combine(_dir, "c"), "shard-*").Single();
        var bytes = File.ReadAllBytes(shard);
        bytes[^3] ^= 1;
        File.WriteAllBytes(shard, bytes);
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => Read("c"));
        Assert.Equal("checksum", e.Check);
        Assert.Contains(Path.GetFileName(shard), e.Message);
        await Assert.ThrowsAsync<CheckpointFormatException>(async () =>
            await NativeCheckpointReader.VerifyAsync(_store, "c", await NativeCheckpointReader.ReadManifestAsync(_store, "c")));
    }

    [Fact]
    public async Task Missing_shard_is_reported()
    {
        await Write("c", SampleState(), 2);
        File.Delete(Directory.GetFiles(Path.Combine(_dir, "c"), "shard-00001*").Single());
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => Read("c"));
        Assert.Equal("presence", e.Check);
    }

    [Fact]
    public async Task No_manifest_means_no_checkpoint()
    {
        await Assert.ThrowsAsync<CheckpointNotFoundException>(() => Read("absent"));
    }

    [Theory]
    [InlineData("\"path\": \"shard", "\"path\": \"../shard", "shard path")]
    [InlineData("\"format_version\": 3", "\"format_version\": 7", "format_version 7 is not supported")]
    [InlineData("\"checksum\": \"crc64:", "\"checksum\": \"md5:", "malformed checksum")]
    public async Task Tampered_manifest_is_refused(string find, string replace, string message)
    {
        await Write("c", SampleState());
        var path = Path.Combine(_dir, "c", "manifest.json");
        var text = File.ReadAllText(path);
        Assert.Contains(find, text);
        File.WriteAllText(path, text.Replace(find, replace, StringComparison.Ordinal));
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => Read("c"));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public async Task Dangling_tensor_reference_in_state_is_refused()
    {
        await Write("c", SampleState());
        var path = Path.Combine(_dir, "c", "manifest.json");
        File.WriteAllText(path, File.ReadAllText(path).Replace("{\"$tensor\": \"model/half\"}", "{\"$tensor\": \"model/nothing\"}", StringComparison.Ordinal)
            .Replace("\"$tensor\": \"model/half\"", "\"$tensor\": \"model/nothing\"", StringComparison.Ordinal));
        var e = await Assert.ThrowsAsync<CheckpointFormatException>(() => Read("c"));
        Assert.Contains("model/nothing", e.Message);
    }

    [Fact]
    public async Task Unstorable_values_are_refused_with_their_path()
    {
        var state = new OrderedDictionary<string, object?> { ["extra"] = new OrderedDictionary<string, object?> { ["when"] = DateTime.Now } };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => Write("c", state));
        Assert.Contains("'extra/when'", e.Message);
        Assert.False(Directory.Exists(Path.Combine(_dir, "c")));
    }

    [Fact]
    public void Manifest_bytes_are_utf8_json()
    {
        var text = Encoding.UTF8.GetString(ManifestJson.Serialize(new Abstractions.CheckpointManifest
        {
            FormatVersion = 1, Run = "r", Name = "n", Iteration = null, WorldSize = 1, CreatedUtc = DateTimeOffset.UnixEpoch,
            Shards = [], Tensors = new Dictionary<string, Abstractions.TensorInfo>(), State = [],
        }));
        Assert.Contains("\"iteration\": null", text);
        Assert.Equal("n", ManifestJson.Parse(Encoding.UTF8.GetBytes(text), "m").Name);
    }

    [Fact]
    public async Task A_manifest_write_that_fails_after_its_commit_keeps_the_shards_it_references()
    {
        await Write("ck", SampleState());
        var state = SampleState();
        var store = new FailsAfterCommitStore(_store, ManifestJson.FileName);

        await Assert.ThrowsAsync<IOException>(() => NativeCheckpointWriter.WriteAsync(store, "ck", new CheckpointIdentity("local", "ck", 100), state, v => v as HostTensor));

        // The re-save's manifest is in place (the previous one is gone), so its shards must be too.
        Assert.Equal(100, (await NativeCheckpointReader.ReadManifestAsync(_store, "ck")).Iteration);
        AssertSameTree(state, await Read("ck"));
    }

    [Fact]
    public async Task A_state_nested_deeper_than_readers_accept_is_refused_and_leaves_nothing()
    {
        var state = new OrderedDictionary<string, object?> { ["w"] = Filled(TensorDType.F32, 2) };
        var inner = state;
        for (var i = 1; i < ManifestJson.MaxJsonDepth; i++) // the state alone is within the limit, the manifest around it is not
        {
            var next = new OrderedDictionary<string, object?>();
            inner["n"] = next;
            inner = next;
        }

        await Assert.ThrowsAsync<CheckpointFormatException>(() => Write("deep", state));

        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    /// <summary>A folder store whose writes of one file name succeed and then report failure, as a lost reply or a failed folder fsync would.</summary>
    private sealed class FailsAfterCommitStore(ICheckpointStore inner, string fileName) : ICheckpointStore
    {
        public string Description => inner.Description;

        public async Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default)
        {
            await inner.WriteAsync(key, writeContent, cancellationToken);
            if (key.EndsWith("/" + fileName, StringComparison.Ordinal)) throw new IOException("reply lost after commit");
        }

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default) => inner.OpenReadAsync(key, cancellationToken);
        public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) => inner.ReadRangeAsync(key, offset, destination, cancellationToken);
        public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);
        public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);
        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }
}
