using Checkpointing.Abstractions;
using Checkpointing.Formats.Tests.Properties;
using Checkpointing.Storage;

namespace Checkpointing.Formats.Tests;

/// <summary>
/// Compressed checkpoints (docs/compression.md): tensors that get smaller are stored bytegroup encoded, marked as such in
/// the shard and the manifest; every read path (whole loads, verify, reused shards, loads into other layouts, rewrites)
/// decodes them and checks the decoded bytes.
/// </summary>
public sealed class CompressedCheckpointTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("compressed-").FullName;
    private readonly FileSystemStore _store;

    public CompressedCheckpointTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static HostTensor Weights(TensorDType dtype, int seed, params long[] shape) =>
        new(dtype, shape, BytegroupCodecProperties.WeightsLike(dtype, (int)shape.Aggregate(1L, (a, b) => a * b), seed));

    private static HostTensor RandomBytes(TensorDType dtype, int seed, params long[] shape)
    {
        var tensor = HostTensor.Allocate(dtype, shape);
        new Random(seed).NextBytes(tensor.Data);
        return tensor;
    }

    /// <summary>Weights of every float dtype, random bytes (incompressible), a small tensor, an integer and a scalar.</summary>
    private static Dictionary<string, HostTensor> Model(int seed) => new()
    {
        ["w32"] = Weights(TensorDType.F32, seed, 256, 64),
        ["w16"] = Weights(TensorDType.F16, seed + 1, 128, 64),
        ["wbf16"] = Weights(TensorDType.BF16, seed + 2, 512, 32),
        ["w64"] = Weights(TensorDType.F64, seed + 3, 64, 16),
        ["noise"] = RandomBytes(TensorDType.F32, seed + 4, 64, 64),
        ["bias"] = Weights(TensorDType.F32, seed + 5, 8),
        ["steps"] = new HostTensor(TensorDType.I64, [2048], new byte[2048 * 8]),
        ["scale"] = Weights(TensorDType.F32, seed + 6),
    };

    private static OrderedDictionary<string, object?> State(IReadOnlyDictionary<string, object?> tensors) =>
        new() { ["model"] = new OrderedDictionary<string, object?>(tensors), ["iteration"] = 7L };

    private static OrderedDictionary<string, object?> State(IReadOnlyDictionary<string, HostTensor> tensors) =>
        State(tensors.ToDictionary(p => p.Key, p => (object?)p.Value));

    private Task<CheckpointManifest> SaveAsync(string name, OrderedDictionary<string, object?> state, NativeWriteOptions? options = null) =>
        NativeCheckpointWriter.WriteAsync(_store, name, new CheckpointIdentity("run", name, 7), state, v => v as HostTensor,
            (options ?? new NativeWriteOptions()) with { Compression = new TensorCompression() });

    private async Task<Dictionary<string, HostTensor>> LoadAsync(string name, NativeLoadOptions? options = null)
    {
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, name);
        var tree = await NativeCheckpointReader.LoadAsync(_store, name, manifest, HostTensor.Allocator, options ?? new NativeLoadOptions());
        return ((OrderedDictionary<string, object?>)tree["model"]!).ToDictionary(p => p.Key, p => (HostTensor)p.Value!);
    }

    private static void AssertSame(IReadOnlyDictionary<string, HostTensor> expected, IReadOnlyDictionary<string, HostTensor> actual)
    {
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (key, tensor) in expected)
        {
            Assert.Equal(tensor.DType, actual[key].DType);
            Assert.Equal(tensor.Shape, actual[key].Shape);
            Assert.True(tensor.Data.AsSpan().SequenceEqual(actual[key].Data), key);
        }
    }

    [Fact]
    public async Task Weights_are_stored_encoded_incompressible_and_small_tensors_as_they_are_and_everything_loads_bit_for_bit()
    {
        var model = Model(1);
        var manifest = await SaveAsync("c1", State(model), new NativeWriteOptions { ShardCount = 2 });

        Assert.Equal(4, manifest.FormatVersion);
        var encoded = manifest.Tensors.Where(t => t.Value.Encoding is not null).Select(t => t.Key["model/".Length..]).Order().ToList();
        Assert.Equal(["steps", "w16", "w32", "w64", "wbf16"], encoded);
        foreach (var key in encoded)
        {
            var info = manifest.Tensors[$"model/{key}"];
            Assert.Equal(model[key].Data.Length, info.RawLength);
            Assert.True(info.ByteLength < info.RawLength, $"{key}: {info.ByteLength} stored for {info.RawLength}");
            Assert.Equal(TensorHash.Of(model[key].Data), info.Hash);
        }
        Assert.Equal(model["noise"].Data.Length, manifest.Tensors["model/noise"].ByteLength); // never stored larger than raw
        Assert.Equal(model.Values.Sum(t => (long)t.Data.Length), manifest.TensorBytes);
        Assert.True(manifest.WrittenBytes < manifest.TensorBytes);

        AssertSame(model, await LoadAsync("c1"));
        await NativeCheckpointReader.VerifyAsync(_store, "c1", manifest);
    }

    [Fact]
    public async Task A_shard_with_encoded_tensors_says_it_is_not_plain_safetensors_and_lists_them_under_marked_keys()
    {
        var manifest = await SaveAsync("c1", State(Model(2)));
        var shardPath = Path.Combine(_dir, "c1", manifest.Shards[0].Path);
        await using var file = File.OpenRead(shardPath);
        var header = SafetensorsHeader.Read(file, file.Length, shardPath);

        Assert.Equal(ShardEncoding.Format, header.Metadata["format"]);
        Assert.Contains(header.Entries, e => e.Key == ShardEncoding.StoredKey("model/w32", BytegroupCodec.Name) && e.DType == TensorDType.U8);
        Assert.DoesNotContain(header.Entries, e => e.Key == "model/w32");
        Assert.Contains(header.Entries, e => e.Key == "model/noise" && e.DType == TensorDType.F32);
    }

    [Fact]
    public async Task A_save_without_compression_still_writes_format_version_3_plain_shards()
    {
        var manifest = await NativeCheckpointWriter.WriteAsync(_store, "plain", new CheckpointIdentity("run", "plain", 7), State(Model(3)), v => v as HostTensor);
        Assert.Equal(3, manifest.FormatVersion);
        Assert.All(manifest.Tensors.Values, t => Assert.Null(t.Encoding));
    }

    [Fact]
    public async Task A_flipped_byte_in_encoded_bytes_fails_the_load_naming_the_shard_and_verify_too()
    {
        var manifest = await SaveAsync("c1", State(Model(4)));
        var info = manifest.Tensors["model/w32"];
        var shardPath = Path.Combine(_dir, "c1", manifest.Shards[0].Path);
        var bytes = await File.ReadAllBytesAsync(shardPath);
        await using (var file = File.OpenRead(shardPath))
        {
            var dataStart = SafetensorsHeader.Read(file, file.Length, shardPath).DataStart;
            bytes[dataStart + info.DataOffsets[0] + info.ByteLength / 2] ^= 0x40;
        }
        await File.WriteAllBytesAsync(shardPath, bytes);

        var load = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadAsync("c1"));
        Assert.Contains(manifest.Shards[0].Path, load.Message);
        await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.VerifyAsync(_store, "c1", manifest));
    }

    [Fact]
    public async Task An_incremental_compressed_save_references_unchanged_encoded_tensors_and_loads_them_decoded()
    {
        var first = Model(5);
        await SaveAsync("c1", State(first));
        var second = new Dictionary<string, HostTensor>(first) { ["w32"] = Weights(TensorDType.F32, 50, 256, 64) };
        var earlier = (await RunCheckpoints.ReadCommittedAsync(_store, "")).Committed;
        var manifest = await SaveAsync("c2", State(second), new NativeWriteOptions { ReuseFrom = earlier });

        Assert.Equal("c1", manifest.Shards[manifest.Tensors["model/wbf16"].Shard].Checkpoint);
        Assert.Equal(BytegroupCodec.Name, manifest.Tensors["model/wbf16"].Encoding);
        Assert.Null(manifest.Shards[manifest.Tensors["model/w32"].Shard].Checkpoint);
        AssertSame(second, await LoadAsync("c2"));
        await NativeCheckpointReader.VerifyAsync(_store, "c2", manifest);
    }

    [Fact]
    public async Task Encoded_chunks_of_a_sharded_tensor_load_into_another_layout_and_whole()
    {
        var whole = Weights(TensorDType.BF16, 6, 96, 64);
        var rows = Enumerable.Range(0, 3).Select(rank => TensorLayout.Split(whole.Shape, 0, rank, 3)).ToList();
        await SaveAsync("c1", State(new Dictionary<string, object?> { ["emb"] = HostTensorSlice.Parts(whole, rows) }), new NativeWriteOptions { ShardCount = 3 });
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, "c1");
        Assert.All(manifest.Sharded["model/emb"].Chunks, c => Assert.Equal(BytegroupCodec.Name, manifest.Tensors[c.Tensor].Encoding));

        AssertSame(new Dictionary<string, HostTensor> { ["emb"] = whole }, await LoadAsync("c1"));
        var columns = TensorLayout.Split(whole.Shape, 1, 1, 2);
        var part = (await LoadAsync("c1", new NativeLoadOptions { Layouts = (_, _) => columns }))["emb"];
        var expected = new byte[part.Data.Length];
        for (var row = 0; row < 96; row++) whole.Data.AsSpan(row * 128 + 64, 64).CopyTo(expected.AsSpan(row * 64));
        Assert.Equal(expected, part.Data);
    }

    [Fact]
    public async Task A_rewrite_of_a_compressed_checkpoint_reads_every_tensor_decoded()
    {
        var model = Model(7);
        var manifest = await SaveAsync("c1", State(model));
        var state = await StoredTensor.StateOfAsync(_store, "c1", manifest);
        var plain = await NativeCheckpointWriter.WriteAsync(_store, "plain", new CheckpointIdentity("run", "plain", 7), state, v => v as ITensorSource);

        Assert.All(plain.Tensors.Values, t => Assert.Null(t.Encoding));
        AssertSame(model, await LoadAsync("plain"));
    }

    [Fact]
    public async Task A_shard_of_a_compressed_checkpoint_opened_as_a_safetensors_file_is_refused_saying_what_to_do()
    {
        var manifest = await SaveAsync("c1", State(Model(9)));
        var shard = Path.Combine(_dir, "c1", manifest.Shards[0].Path);
        var refused = Assert.Throws<CheckpointFormatException>(() => SafetensorsFile.Read(shard, HostTensor.Allocator));
        Assert.Contains("compact --decompress", refused.Message);
    }

    [Fact]
    public async Task An_uncompressed_tensor_whose_key_ends_like_a_marked_one_saves_and_loads_as_any_other()
    {
        var model = new Dictionary<string, HostTensor> { ["w#bytegroup"] = Weights(TensorDType.F32, 10, 64, 64), ["w"] = Weights(TensorDType.F32, 11, 64, 64) };
        await NativeCheckpointWriter.WriteAsync(_store, "plain", new CheckpointIdentity("run", "plain", 7), State(model), v => v as HostTensor);
        AssertSame(model, await LoadAsync("plain"));
        await Assert.ThrowsAsync<ArgumentException>(() => SaveAsync("c1", State(model))); // compressed, the marked key would be ambiguous
    }

    [Fact]
    public async Task A_manifest_that_claims_an_unknown_encoding_or_a_wrong_raw_length_is_refused()
    {
        await SaveAsync("c1", State(Model(8)));
        var path = Path.Combine(_dir, "c1", ManifestJson.FileName);
        var text = await File.ReadAllTextAsync(path);
        var unknown = Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(System.Text.Encoding.UTF8.GetBytes(text.Replace("\"bytegroup\"", "\"lz4\"")), "m"));
        Assert.Contains("lz4", unknown.Message);
        var raw = text.IndexOf("\"raw_bytes\": ", StringComparison.Ordinal);
        var wrong = text[..(raw + 13)] + "1" + text[(raw + 13)..];
        Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(System.Text.Encoding.UTF8.GetBytes(wrong), "m"));
        // Stored bytes beyond what any encoding of the tensor takes (a decoder would allocate them before looking).
        var manifest = ManifestJson.Parse(System.Text.Encoding.UTF8.GetBytes(text), "m");
        var (key, info) = manifest.Tensors.First(t => t.Value.Encoding is not null);
        var inflated = manifest with { Tensors = new Dictionary<string, TensorInfo>(manifest.Tensors) { [key] = info with { DataOffsets = [info.DataOffsets[0], info.DataOffsets[0] + 3 * info.RawLength!.Value] } } };
        var tooLong = Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(ManifestJson.Serialize(inflated), "m"));
        Assert.Contains("more than any encoding", tooLong.Message);
    }
}
