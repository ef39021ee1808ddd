using System.IO.Hashing;
using Checkpointing.Abstractions;
using Checkpointing.Storage;
using CsCheck;

namespace Checkpointing.Formats.Tests.Properties;

/// <summary>
/// Issue 10 (blob load): a store that prefers parallel ranged reads has each shard read as ranges straight into the
/// tensors, every range hashed as it lands and the hashes combined in file order. Whatever the range size and the
/// number in flight, the tensors must come back bit for bit and one changed byte anywhere must fail the load.
/// </summary>
public sealed class RangedReadProperties
{
    [Fact]
    public void The_crc64_of_a_concatenation_is_computed_from_the_crc64s_of_its_parts()
    {
        Gen.Byte.Array[0, 3000].Array[1, 6].Sample(parts =>
        {
            var whole = parts.SelectMany(p => p).ToArray();
            var combined = Crc64.HashToUInt64(parts[0]);
            foreach (var part in parts.Skip(1)) combined = Crc64Concatenation.Append(combined, Crc64.HashToUInt64(part), part.Length);
            Assert.Equal(Crc64.HashToUInt64(whole), combined);
        }, iter: 300);
    }

    [Fact]
    public void Any_checkpoint_read_as_parallel_ranges_reads_back_bit_for_bit_without_a_sequential_read()
    {
        var case_ = 0;
        Gen.Select(StateDictGen.StateDicts(Enum.GetValues<TensorDType>(), maxTensors: 80), Gen.Int[1, 400], Gen.Int[1, 5]).Sample((dict, rangeSize, inFlight) =>
        {
            var memory = new MemoryStore();
            var name = $"c{Interlocked.Increment(ref case_)}";
            var model = dict.CreateModel();
            Write(memory, name, model, dict.Shards);

            var store = new RangedReadingStore(memory, new ParallelRangeReads(rangeSize, inFlight));
            var manifest = NativeCheckpointReader.ReadManifestAsync(store, name).GetAwaiter().GetResult();
            var loaded = NativeCheckpointReader.LoadAsync(store, name, manifest, HostTensor.Allocator).GetAwaiter().GetResult();
            RoundTripProperties.AssertSame(model, ((OrderedDictionary<string, object?>)loaded["model"]!).ToDictionary(p => p.Key, p => (HostTensor)p.Value!, StringComparer.Ordinal));
            Assert.Equal(0, store.SequentialReads);
        }, iter: 40);
    }

    [Fact]
    public void One_changed_byte_anywhere_in_a_shard_fails_a_ranged_load_and_names_the_shard()
    {
        var case_ = 0;
        Gen.Select(StateDictGen.StateDicts([TensorDType.F32, TensorDType.U8, TensorDType.I64], maxTensors: 40), Gen.Int[1, 300], Gen.Int[1, 4], Gen.Int, Gen.Int)
            .Sample((dict, rangeSize, inFlight, shardPick, bytePick) =>
            {
                var memory = new MemoryStore();
                var name = $"c{Interlocked.Increment(ref case_)}";
                var model = dict.CreateModel();
                var written = Write(memory, name, model, dict.Shards);

                var shard = written.Shards[Math.Abs(shardPick % written.Shards.Count)];
                var key = CheckpointFiles.ShardKey(name, shard);
                var bytes = ReadAll(memory, key);
                var at = Math.Abs(bytePick % bytes.Length);
                var headerEnd = 8 + BitConverter.ToInt64(bytes.AsSpan(0, 8));
                bytes[at] ^= 0x01;
                memory.WriteBytesAsync(key, bytes).GetAwaiter().GetResult();

                var store = new RangedReadingStore(memory, new ParallelRangeReads(rangeSize, inFlight));
                var manifest = NativeCheckpointReader.ReadManifestAsync(store, name).GetAwaiter().GetResult();
                var failure = Assert.Throws<CheckpointFormatException>(() => NativeCheckpointReader.LoadAsync(store, name, manifest, HostTensor.Allocator).GetAwaiter().GetResult());
                Assert.Equal(key, failure.Source);
                // As the sequential reader reports it: a damaged header as a checksum mismatch, unless it still parses
                // and then disagrees with the manifest's index (a changed key or shape).
                Assert.Contains(failure.Check, at >= headerEnd ? ["checksum"] : new[] { "checksum", "index" });
            }, iter: 80);
    }

    private static CheckpointManifest Write(ICheckpointStore store, string name, OrderedDictionary<string, object?> model, int shards) =>
        NativeCheckpointWriter.WriteAsync(store, name, new CheckpointIdentity("props", name, 1), new OrderedDictionary<string, object?> { ["model"] = model },
            v => v as ITensorSource, new NativeWriteOptions { ShardCount = shards }).GetAwaiter().GetResult();

    private static byte[] ReadAll(ICheckpointStore store, string key)
    {
        using var stream = store.OpenReadAsync(key).GetAwaiter().GetResult();
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    /// <summary>A real in-memory store that asks for parallel ranged reads, as the blob store does, and counts sequential opens of shards.</summary>
    private sealed class RangedReadingStore(ICheckpointStore inner, ParallelRangeReads plan) : ICheckpointStore
    {
        private int _sequentialReads;

        public int SequentialReads => _sequentialReads;
        public string Description => inner.Description;
        public ParallelRangeReads ParallelReads => plan;

        public Task WriteAsync(string key, Func<Stream, CancellationToken, Task> writeContent, CancellationToken cancellationToken = default) =>
            inner.WriteAsync(key, writeContent, cancellationToken);

        public Task<Stream> OpenReadAsync(string key, CancellationToken cancellationToken = default)
        {
            if (CheckpointFiles.IsShard(key[(key.LastIndexOf('/') + 1)..])) Interlocked.Increment(ref _sequentialReads);
            return inner.OpenReadAsync(key, cancellationToken);
        }

        public Task ReadRangeAsync(string key, long offset, Memory<byte> destination, CancellationToken cancellationToken = default) =>
            inner.ReadRangeAsync(key, offset, destination, cancellationToken);

        public Task<StoreEntry?> GetEntryAsync(string key, CancellationToken cancellationToken = default) => inner.GetEntryAsync(key, cancellationToken);

        public IAsyncEnumerable<StoreEntry> ListAsync(string prefix, CancellationToken cancellationToken = default) => inner.ListAsync(prefix, cancellationToken);

        public Task<bool> DeleteAsync(string key, CancellationToken cancellationToken = default) => inner.DeleteAsync(key, cancellationToken);
    }
}
