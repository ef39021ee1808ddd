using Checkpointing.Abstractions;
using Checkpointing.Storage;
using CsCheck;

namespace Checkpointing.Formats.Tests;

/// <summary>
/// Block reuse (docs/compression.md#block-reuse): an incremental save writes only the changed blocks of rows of a large tensor
/// and references the others where earlier checkpoints stored them; every read path assembles the tensor bit for bit and
/// checks each block.
/// </summary>
public sealed class BlockReuseTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("blocks-").FullName;
    private readonly FileSystemStore _store;

    public BlockReuseTests() => _store = new FileSystemStore(_dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Blocks of one 128-byte row (32 f32 per row) for any table of at least 1 KiB.</summary>
    private static readonly BlockReuse Rows = new() { MinBytes = 1024, BlockBytes = 128 };

    private static HostTensor Table(int rows, int columns, int seed)
    {
        var table = HostTensor.Allocate(TensorDType.F32, [rows, columns]);
        new Random(seed).NextBytes(table.Data);
        return table;
    }

    /// <summary>A copy of <paramref name="table"/> with <paramref name="rows"/> rows overwritten with new random bytes.</summary>
    private static HostTensor Touch(HostTensor table, IEnumerable<int> rows, Random random)
    {
        var copy = new HostTensor(table.DType, table.Shape, (byte[])table.Data.Clone());
        var rowBytes = (int)(copy.Data.Length / copy.Shape[0]);
        foreach (var row in rows) random.NextBytes(copy.Data.AsSpan(row * rowBytes, rowBytes));
        return copy;
    }

    private static OrderedDictionary<string, object?> State(HostTensor table, HostTensor bias) =>
        new() { ["model"] = new OrderedDictionary<string, object?> { ["table"] = table, ["bias"] = bias } };

    private static async Task<CheckpointManifest> SaveAsync(ICheckpointStore store, string name, OrderedDictionary<string, object?> state, BlockReuse reuse, int shards = 1)
    {
        var run = await RunCheckpoints.ReadCommittedAsync(store, "");
        return await NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("run", name, 1), state, v => v as HostTensor,
            new NativeWriteOptions { ReuseFrom = run.Committed, BlockReuse = reuse, ShardCount = shards });
    }

    private static async Task<HostTensor> LoadTableAsync(ICheckpointStore store, string name, NativeLoadOptions? options = null)
    {
        var manifest = await NativeCheckpointReader.ReadManifestAsync(store, name);
        var tree = await NativeCheckpointReader.LoadAsync(store, name, manifest, HostTensor.Allocator, options ?? new NativeLoadOptions());
        return (HostTensor)((OrderedDictionary<string, object?>)tree["model"]!)["table"]!;
    }

    /// <summary>The bytes the save wrote for the table: its entry (map, hashes and the blocks written).</summary>
    private static long TableEntryBytes(CheckpointManifest manifest) => manifest.Tensors["model/table"].ByteLength;

    [Fact]
    public async Task Only_the_blocks_of_touched_rows_are_written_and_every_checkpoint_loads_and_verifies_bit_for_bit()
    {
        var random = new Random(1);
        var table = Table(4096, 32, seed: 2);
        var bias = Table(1, 8, seed: 3);
        var first = await SaveAsync(_store, "c0", State(table, bias), Rows);
        Assert.Equal(BlockMap.Encoding, first.Tensors["model/table"].Encoding);
        Assert.True(TableEntryBytes(first) > table.Data.Length, "the first save writes every block");

        var expected = new Dictionary<string, HostTensor> { ["c0"] = table };
        for (var period = 1; period <= 5; period++)
        {
            var touched = Enumerable.Range(0, 41).Select(_ => random.Next(4096)).ToList(); // 1% of the rows
            table = Touch(table, touched, random);
            var manifest = await SaveAsync(_store, $"c{period}", State(table, bias), Rows);
            expected[$"c{period}"] = table;
            var info = manifest.Tensors["model/table"];
            Assert.Equal(TensorHash.Of(table.Data), info.Hash);
            Assert.Equal(table.Data.Length, info.RawLength);
            // 41 rows of 128 bytes and their hashes, plus a map of a few runs per touched row: far below 5% of the table.
            Assert.True(TableEntryBytes(manifest) <= touched.Distinct().Count() * (128 + 8) + 64 * 1024 / 10, $"period {period}: {TableEntryBytes(manifest)} bytes");
            Assert.True(manifest.WrittenBytes < table.Data.Length / 20, $"period {period} wrote {manifest.WrittenBytes} bytes");
            Assert.Contains(manifest.Shards, s => s.Checkpoint == "c0"); // the first save's blocks, referenced
        }
        foreach (var (name, tensor) in expected)
        {
            Assert.Equal(tensor.Data, (await LoadTableAsync(_store, name)).Data);
            await NativeCheckpointReader.VerifyAsync(_store, name, await NativeCheckpointReader.ReadManifestAsync(_store, name));
        }
    }

    [Fact]
    public async Task An_unchanged_table_writes_only_its_map()
    {
        var table = Table(2048, 32, seed: 4);
        var bias = Table(1, 8, seed: 5);
        await SaveAsync(_store, "c0", State(table, bias), Rows);
        var again = await SaveAsync(_store, "c1", State(table, bias), Rows);

        Assert.True(TableEntryBytes(again) < 128, $"{TableEntryBytes(again)} bytes for an unchanged table");
        Assert.Equal(table.Data, (await LoadTableAsync(_store, "c1")).Data);
    }

    [Fact]
    public async Task A_map_names_at_most_max_sources_places_and_writes_again_the_blocks_of_those_it_drops()
    {
        var random = new Random(6);
        var reuse = Rows with { MaxSources = 3 };
        var table = Table(1024, 32, seed: 7);
        var bias = Table(1, 8, seed: 8);
        await SaveAsync(_store, "c00", State(table, bias), reuse);
        for (var period = 1; period <= 8; period++)
        {
            table = Touch(table, Enumerable.Range(0, 20).Select(_ => random.Next(1024)), random);
            var manifest = await SaveAsync(_store, $"c{period:D2}", State(table, bias), reuse);
            Assert.True(manifest.ReusedFrom.Count() <= 2, $"period {period} references {string.Join(", ", manifest.ReusedFrom)}");
            Assert.Equal(table.Data, (await LoadTableAsync(_store, $"c{period:D2}")).Data);
        }
    }

    [Fact]
    public async Task A_save_whose_earlier_blocks_are_gone_writes_every_block_and_does_not_reference_them()
    {
        var table = Table(1024, 32, seed: 9);
        var bias = Table(1, 8, seed: 10);
        var first = await SaveAsync(_store, "c0", State(table, bias), Rows);
        File.Delete(Path.Combine(_dir, "c0", first.Shards[0].Path));

        var second = await SaveAsync(_store, "c1", State(table, bias), Rows);
        Assert.Empty(second.ReusedFrom);
        Assert.True(TableEntryBytes(second) > table.Data.Length);
        Assert.Equal(table.Data, (await LoadTableAsync(_store, "c1")).Data);
    }

    [Fact]
    public async Task A_damaged_referenced_block_fails_the_load_and_verify_and_a_ranged_load_names_the_block()
    {
        var random = new Random(11);
        var table = Table(1024, 32, seed: 12);
        var bias = Table(1, 8, seed: 13);
        var first = await SaveAsync(_store, "c0", State(table, bias), Rows);
        await SaveAsync(_store, "c1", State(Touch(table, [5], random), bias), Rows);
        // Flip a byte of row 700's block, which c1 references in c0's shard.
        var (shardPath, entryAt, map) = await TableEntryAsync("c0", first);
        var manifest = await NativeCheckpointReader.ReadManifestAsync(_store, "c1");
        var bytes = File.ReadAllBytes(shardPath);
        bytes[entryAt + map.OwnPayloadAt + 700 * 128 + 3] ^= 0x40;
        File.WriteAllBytes(shardPath, bytes);

        await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadTableAsync(_store, "c1"));
        await Assert.ThrowsAsync<CheckpointFormatException>(() => NativeCheckpointReader.VerifyAsync(_store, "c1", manifest));
        // A load into a layout reads only ranges (no shard checksum): the block's own hash catches it.
        var rows = new NativeLoadOptions { Layouts = (key, shape) => key == "model/table" ? TensorLayout.Split(shape, 0, 1, 2) : null };
        var failure = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadTableAsync(_store, "c1", rows));
        Assert.Contains("block 700", failure.Message);
    }

    [Fact]
    public async Task A_load_reads_only_the_blocks_it_uses_of_an_earlier_shard_while_verify_checks_that_shard_whole()
    {
        var table = Table(1024, 32, seed: 23);
        var tableOnly = new OrderedDictionary<string, object?> { ["model"] = new OrderedDictionary<string, object?> { ["table"] = table } };
        var first = await SaveAsync(_store, "c0", tableOnly, Rows);
        var changed = Touch(table, [5], new Random(24));
        await SaveAsync(_store, "c1", new() { ["model"] = new OrderedDictionary<string, object?> { ["table"] = changed } }, Rows);
        // Damage row 5's block in c0: c1 wrote that block itself, so it uses nothing damaged.
        var (shardPath, entryAt, map) = await TableEntryAsync("c0", first);
        var bytes = File.ReadAllBytes(shardPath);
        bytes[entryAt + map.OwnPayloadAt + 5 * 128] ^= 0x01;
        File.WriteAllBytes(shardPath, bytes);

        Assert.Equal(changed.Data, (await LoadTableAsync(_store, "c1")).Data);
        var refused = await Assert.ThrowsAsync<CheckpointFormatException>(async () => await NativeCheckpointReader.VerifyAsync(_store, "c1", await NativeCheckpointReader.ReadManifestAsync(_store, "c1")));
        Assert.Contains(first.Shards[0].Path, refused.Message);
        await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadTableAsync(_store, "c0"));
    }

    [Fact]
    public async Task Two_blocks_swapped_with_their_hashes_pass_every_block_check_but_fail_the_tensor_hash_of_a_whole_load()
    {
        var table = Table(1024, 32, seed: 16);
        var manifest = await SaveAsync(_store, "c0", State(table, Table(1, 8, seed: 17)), Rows);
        var (shardPath, entryAt, map) = await TableEntryAsync("c0", manifest);
        var bytes = File.ReadAllBytes(shardPath);
        var hashes = entryAt + map.MapLength;
        var blocks = entryAt + map.OwnPayloadAt;
        Swap(bytes, hashes + 3 * 8, hashes + 4 * 8, 8);
        Swap(bytes, blocks + 3 * 128, blocks + 4 * 128, 128);
        File.WriteAllBytes(shardPath, bytes);

        // Loaded through the ranged path (no shard checksum), whole: each block matches the hash beside it, the tensor does not.
        var whole = new NativeLoadOptions { Layouts = (_, shape) => TensorLayout.Whole(shape) };
        var failure = await Assert.ThrowsAsync<CheckpointFormatException>(() => LoadTableAsync(_store, "c0", whole));
        Assert.Contains("hash", failure.Message);
    }

    /// <summary>The file of the shard holding checkpoint <paramref name="name"/>'s table entry, where in it the entry starts, and its map.</summary>
    private async Task<(string ShardPath, long EntryAt, BlockMap Map)> TableEntryAsync(string name, CheckpointManifest manifest)
    {
        var entry = manifest.Tensors["model/table"];
        var shard = manifest.Shards[entry.Shard];
        var shardPath = Path.Combine(_dir, name, shard.Path);
        long dataStart;
        await using (var file = File.OpenRead(shardPath)) dataStart = SafetensorsHeader.Read(file, file.Length, shardPath).DataStart;
        var entryAt = dataStart + entry.DataOffsets[0];
        return (shardPath, entryAt, await BlockMap.ReadAsync(_store, $"{name}/{shard.Path}", entryAt, entry.ByteLength, entry.LogicalLength, 128, "model/table", default));
    }

    private static void Swap(byte[] bytes, long first, long second, int length)
    {
        var copy = bytes.AsSpan((int)first, length).ToArray();
        bytes.AsSpan((int)second, length).CopyTo(bytes.AsSpan((int)first, length));
        copy.CopyTo(bytes.AsSpan((int)second, length));
    }

    [Fact]
    public async Task A_manifest_indexing_a_block_mapped_tensor_into_a_reused_shard_is_refused()
    {
        var table = Table(1024, 32, seed: 18);
        await SaveAsync(_store, "c0", State(table, Table(1, 8, seed: 19)), Rows);
        var manifest = await SaveAsync(_store, "c1", State(Touch(table, [1], new Random(20)), Table(1, 8, seed: 19)), Rows);
        var reused = manifest.Shards.Select((shard, index) => (shard, index)).First(s => s.shard.Checkpoint is not null).index;
        var moved = manifest with { Tensors = new Dictionary<string, TensorInfo>(manifest.Tensors) { ["model/table"] = manifest.Tensors["model/table"] with { Shard = reused } } };
        var refused = Assert.Throws<CheckpointFormatException>(() => ManifestJson.Parse(ManifestJson.Serialize(moved), "m"));
        Assert.Contains("reused shard", refused.Message);
    }

    [Fact]
    public async Task Block_reuse_without_an_incremental_save_or_with_a_block_size_out_of_range_is_refused()
    {
        var state = State(Table(64, 32, seed: 21), Table(1, 8, seed: 22));
        await Assert.ThrowsAsync<ArgumentException>(() => NativeCheckpointWriter.WriteAsync(_store, "c0", new CheckpointIdentity("run", "c0", 1), state, v => v as HostTensor,
            new NativeWriteOptions { BlockReuse = Rows }));
        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => SaveAsync(_store, "c0", state, Rows with { BlockBytes = 8 }));
        Assert.Empty(Directory.EnumerateFileSystemEntries(_dir));
    }

    [Fact]
    public async Task A_shard_with_a_block_mapped_tensor_says_it_is_not_plain_safetensors()
    {
        var manifest = await SaveAsync(_store, "c0", State(Table(1024, 32, seed: 14), Table(1, 8, seed: 15)), Rows);
        var shardPath = Path.Combine(_dir, "c0", manifest.Shards[0].Path);
        using var stream = File.OpenRead(shardPath);
        var header = SafetensorsHeader.Read(stream, stream.Length, shardPath);
        Assert.Equal(ShardEncoding.Format, header.Metadata["format"]);
        Assert.Contains(header.Entries, e => e.Key == ShardEncoding.StoredKey("model/table", BlockMap.Encoding) && e.DType == TensorDType.U8);
    }

    private static readonly TensorDType[] DTypes = [TensorDType.F32, TensorDType.BF16, TensorDType.I64, TensorDType.U8];

    /// <summary>A table, a block size, a source limit, and per save after the first: how many rows change (none, a few, a tenth, all) and a seed.</summary>
    private static readonly Gen<(TensorDType DType, int Rows, int Columns, int BlockBytes, int MaxSources, (int Kind, int Seed)[] Saves)> Cases =
        from dtype in Gen.Int[0, DTypes.Length - 1].Select(i => DTypes[i])
        from rows in Gen.Int[1, 300]
        from columns in Gen.Int[1, 12]
        from blockBytes in Gen.Int[BlockMap.MinBlockBytes, 300]
        from maxSources in Gen.Int[1, 4]
        from saves in Gen.Select(Gen.Int[0, 3], Gen.Int).Array[1, 6]
        select (dtype, rows, columns, blockBytes, maxSources, saves);

    [Fact]
    public void Any_sequence_of_row_updates_loads_bit_for_bit_whole_and_by_rows_after_every_save()
    {
        Cases.Sample(c =>
        {
            var store = new MemoryStore();
            var reuse = new BlockReuse { MinBytes = 1, BlockBytes = c.BlockBytes, MaxSources = c.MaxSources };
            var table = HostTensor.Allocate(c.DType, [c.Rows, c.Columns]);
            var random = new Random(c.Rows * 31 + c.Columns);
            random.NextBytes(table.Data);
            for (var save = 0; save <= c.Saves.Length; save++)
            {
                if (save > 0)
                {
                    var (kind, seed) = c.Saves[save - 1];
                    var changes = new Random(seed);
                    var rows = kind switch { 0 => [], 1 => Enumerable.Range(0, 3).Select(_ => changes.Next(c.Rows)), 2 => Enumerable.Range(0, c.Rows).Where(_ => changes.Next(10) == 0), _ => Enumerable.Range(0, c.Rows) };
                    table = Touch(table, rows, changes);
                }
                var name = $"c{save}";
                var manifest = SaveAsync(store, name, new() { ["model"] = new OrderedDictionary<string, object?> { ["table"] = table } }, reuse).GetAwaiter().GetResult();
                Assert.True(manifest.ReusedFrom.Count() < c.MaxSources);
                Assert.Equal(table.Data, LoadTableAsync(store, name).GetAwaiter().GetResult().Data);
                NativeCheckpointReader.VerifyAsync(store, name, manifest).GetAwaiter().GetResult();
                if (c.Rows >= 2)
                {
                    var half = TensorLayout.Split(table.Shape, 0, 1, 2);
                    var rows = LoadTableAsync(store, name, new NativeLoadOptions { Layouts = (key, shape) => key == "model/table" ? half : null }).GetAwaiter().GetResult();
                    var rowBytes = table.Data.Length / c.Rows;
                    Assert.Equal(table.Data.AsSpan((int)half.Offsets![0] * rowBytes).ToArray(), rows.Data);
                }
            }
        }, iter: 60, print: c => $"{c.DType}[{c.Rows}, {c.Columns}] blocks of {c.BlockBytes}, at most {c.MaxSources} sources, saves {string.Join(" ", c.Saves.Select(s => s.Kind))}");
    }
}
