using Azure.Core;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Processes;
using Checkpointing.TestSupport;

namespace Checkpointing.Storage.Tests;

/// <summary>One Azurite for the Azure Blob store tests.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public Azurite Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await RepoPaths.StartAzurite();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}

/// <summary>
/// The store contract against a real Azure Blob service (Azurite), with small blocks and ranges so
/// uploads span many parallel blocks and reads many prefetched ranges.
/// </summary>
public sealed class AzureBlobStoreContractTests : StoreContractTests, IClassFixture<AzuriteFixture>
{
    private const int BlockSize = 256 << 10;
    private const int RangeSize = 192 << 10; // not a multiple of the block size: ranges straddle blocks
    private readonly AzuriteFixture _fixture;
    private readonly RequestLog _requests = new();
    private readonly AzureBlobStore _store;

    public AzureBlobStoreContractTests(AzuriteFixture fixture)
    {
        _fixture = fixture;
        _store = CreateStore(TransferChecksum.None);
    }

    private AzureBlobStore CreateStore(TransferChecksum checksum)
    {
        var options = AzureBlobStore.CreateClientOptions(maxRetries: 1, networkTimeout: TimeSpan.FromSeconds(10));
        options.AddPolicy(_requests, HttpPipelinePosition.PerRetry);
        return new AzureBlobStore(
            new BlobServiceClient(_fixture.Azurite.ConnectionString, options).GetBlobContainerClient($"c{Guid.NewGuid():N}"),
            new AzureBlobStoreOptions { BlockSize = BlockSize, MaxBlocksInFlight = 3, ReadRangeSize = RangeSize, MaxRangesInFlight = 3, TransferChecksum = checksum });
    }

    protected override ICheckpointStore Store => _store;

    private static byte[] Bytes(int n)
    {
        var b = new byte[n];
        new Random(n).NextBytes(b);
        return b;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1000)]
    [InlineData(BlockSize)]
    public async Task A_write_of_at_most_one_block_is_one_put_blob_request_without_a_checksum(int length)
    {
        var data = Bytes(length);
        await _store.WriteBytesAsync("small/obj", data);
        var put = Assert.Single(_requests.To("small/obj"));
        Assert.Equal(("PUT", null, false, false, false), (put.Method, put.Comp, put.HasContentMd5, put.HasContentCrc64, put.HasStructuredBody));
        await using var read = await _store.OpenReadAsync("small/obj");
        var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.Equal(data, copy.ToArray());
    }

    [Fact]
    public async Task A_write_of_more_than_one_block_stages_blocks_then_commits_the_list()
    {
        await _store.WriteBytesAsync("large/obj", Bytes(2 * BlockSize + 1));
        var requests = _requests.To("large/obj");
        Assert.All(requests, r => Assert.Equal("PUT", r.Method));
        Assert.Equal(["block", "block", "block", "blocklist"], requests.Select(r => r.Comp).Order(StringComparer.Ordinal));
        Assert.Equal("blocklist", requests[^1].Comp);
        Assert.All(requests, r => Assert.False(r.HasContentMd5 || r.HasContentCrc64 || r.HasStructuredBody, "no per-request checksum by default"));
        Assert.Equal(2 * BlockSize + 1, (await _store.GetEntryAsync("large/obj"))!.Length);
    }

    [Fact]
    public async Task With_md5_every_put_and_block_carries_its_content_md5()
    {
        var store = CreateStore(TransferChecksum.Md5);
        var small = Bytes(1000);
        var large = Bytes(2 * BlockSize + 1);
        await store.WriteBytesAsync("md5/small", small);
        await store.WriteBytesAsync("md5/large", large);

        Assert.True(Assert.Single(_requests.To("md5/small")).HasContentMd5);
        var blocks = _requests.To("md5/large").Where(r => r.Comp == "block").ToList();
        Assert.Equal(3, blocks.Count);
        Assert.All(blocks, r => Assert.True(r.HasContentMd5));
        Assert.Equal(small, await ReadAll(store, "md5/small"));
        Assert.Equal(large, await ReadAll(store, "md5/large"));
    }

    /// <summary>
    /// What really happens with CRC-64 against Azurite: the SDK (12.30) sends the CRC-64 inside a
    /// structured-message body (<c>x-ms-structured-body</c>), not as an <c>x-ms-content-crc64</c>
    /// header; Azurite 3.37 does not understand that encoding, stores the encoded body as is, and the
    /// SDK then fails the write because the response does not acknowledge it. A Put Blob's object is
    /// left behind holding the encoded bytes; staged blocks are never committed. If this test fails,
    /// Azurite or the SDK changed: the option may then be usable locally.
    /// </summary>
    [Fact]
    public async Task With_crc64_the_sdk_sends_structured_messages_that_azurite_does_not_acknowledge()
    {
        var store = CreateStore(TransferChecksum.StorageCrc64);

        await Assert.ThrowsAsync<InvalidDataException>(() => store.WriteBytesAsync("crc/small", Bytes(1000)));
        await Assert.ThrowsAsync<InvalidDataException>(() => store.WriteBytesAsync("crc/large", Bytes(2 * BlockSize + 1)));

        var put = Assert.Single(_requests.To("crc/small"));
        Assert.Equal((false, false, true), (put.HasContentMd5, put.HasContentCrc64, put.HasStructuredBody));
        Assert.All(_requests.To("crc/large"), r => Assert.Equal(("block", true), (r.Comp, r.HasStructuredBody)));
        Assert.True(await store.GetEntryAsync("crc/small") is { Length: > 1000 }, "Azurite keeps the structured message's framing as content");
        Assert.Null(await store.GetEntryAsync("crc/large"));
    }

    private static async Task<byte[]> ReadAll(ICheckpointStore store, string key)
    {
        await using var read = await store.OpenReadAsync(key);
        var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        return copy.ToArray();
    }

    [Fact]
    public async Task Sync_and_async_reads_of_any_size_cross_prefetched_ranges_exactly()
    {
        var data = Bytes(5 * RangeSize + 12345);
        await _store.WriteBytesAsync("ranges/obj", data);
        foreach (var chunk in new[] { 1, 4093, RangeSize, RangeSize + 1, 1 << 20 })
        {
            var syncCopy = new MemoryStream();
            var asyncCopy = new MemoryStream();
            var buffer = new byte[chunk];
            await using (var read = await _store.OpenReadAsync("ranges/obj"))
            {
                for (int n; (n = read.Read(buffer, 0, Math.Min(chunk, 7919))) > 0;) syncCopy.Write(buffer, 0, n);
            }
            await using (var read = await _store.OpenReadAsync("ranges/obj"))
            {
                for (int n; (n = await read.ReadAsync(buffer)) > 0;) asyncCopy.Write(buffer, 0, n);
                Assert.Equal(data.Length, read.Position);
            }
            Assert.Equal(data, syncCopy.ToArray());
            Assert.Equal(data, asyncCopy.ToArray());
        }
    }

    [Fact]
    public async Task A_reader_disposed_with_ranges_in_flight_stops_cleanly_and_later_reads_are_intact()
    {
        var data = Bytes(8 * RangeSize);
        await _store.WriteBytesAsync("ranges/abandoned", data);
        for (var i = 0; i < 5; i++)
        {
            var read = await _store.OpenReadAsync("ranges/abandoned");
            Assert.Equal(data[0], (byte)read.ReadByte()); // ranges behind the first are still downloading
            if (i % 2 == 0) read.Dispose();
            else await read.DisposeAsync();
            Assert.Throws<ObjectDisposedException>(() => read.ReadByte());
        }
        // Buffers returned to the pool while a download still wrote into them would corrupt these reads.
        for (var i = 0; i < 3; i++) Assert.Equal(data, await ReadAll(_store, "ranges/abandoned"));
    }

    [Fact]
    public async Task A_failed_small_write_sends_nothing_for_its_blob()
    {
        await Assert.ThrowsAsync<IOException>(() => _store.WriteAsync("x/small", async (s, ct) =>
        {
            await s.WriteAsync(Bytes(1000), ct);
            throw new IOException("writer failed");
        }));
        Assert.Empty(_requests.To("x/small"));
        Assert.Null(await _store.GetEntryAsync("x/small"));
    }

    [Fact]
    public async Task Uncommitted_blocks_of_a_failed_upload_are_not_a_blob()
    {
        await Assert.ThrowsAsync<IOException>(() => _store.WriteAsync("x/partial", async (s, ct) =>
        {
            await s.WriteAsync(new byte[3 << 20], ct); // several blocks already staged
            throw new IOException("writer failed");
        }));
        Assert.Null(await _store.GetEntryAsync("x/partial"));
        await foreach (var _ in _store.ListAsync("x/")) Assert.Fail("a failed upload must not be listed");
    }

    [Fact]
    public async Task Manifest_blobs_are_application_json_and_shards_are_bytes()
    {
        await _store.WriteTextAsync("ct/ck/manifest.json", "{}");
        await _store.WriteBytesAsync("ct/ck/shard-00000-of-00001-0123abcd.safetensors", new byte[300 << 10]); // several blocks
        var manifest = await _store.Container.GetBlobClient("ct/ck/manifest.json").GetPropertiesAsync();
        var shard = await _store.Container.GetBlobClient("ct/ck/shard-00000-of-00001-0123abcd.safetensors").GetPropertiesAsync();
        Assert.Equal("application/json", manifest.Value.ContentType);
        Assert.Equal("application/octet-stream", shard.Value.ContentType);
    }
}
