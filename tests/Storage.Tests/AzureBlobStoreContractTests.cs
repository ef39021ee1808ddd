using Checkpointing.Storage;
using Azure.Core;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.TestSupport;

namespace Checkpointing.Storage.Tests;

/// <summary>One Azurite for the Azure Blob store tests.</summary>
public sealed class AzuriteFixture : IAsyncLifetime
{
    public Azurite Azurite { get; private set; } = null!;

    public async Task InitializeAsync() => Azurite = await RepoPaths.StartAzurite();

    public async Task DisposeAsync() => await Azurite.DisposeAsync();
}

/// <summary>The store contract against a real Azure Blob service (Azurite), with small blocks so uploads span many parallel blocks.</summary>
public sealed class AzureBlobStoreContractTests : StoreContractTests, IClassFixture<AzuriteFixture>
{
    private const int BlockSize = 256 << 10;
    private readonly RequestLog _requests = new();
    private readonly AzureBlobStore _store;

    public AzureBlobStoreContractTests(AzuriteFixture fixture)
    {
        var options = AzureBlobStore.CreateClientOptions(maxRetries: 1, networkTimeout: TimeSpan.FromSeconds(10));
        options.AddPolicy(_requests, HttpPipelinePosition.PerRetry);
        _store = new AzureBlobStore(
            new BlobServiceClient(fixture.Azurite.ConnectionString, options).GetBlobContainerClient($"c{Guid.NewGuid():N}"),
            new AzureBlobStoreOptions { BlockSize = BlockSize, MaxBlocksInFlight = 3 });
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
    public async Task A_write_of_at_most_one_block_is_one_put_blob_request_with_its_md5(int length)
    {
        var data = Bytes(length);
        await _store.WriteBytesAsync("small/obj", data);
        var put = Assert.Single(_requests.To("small/obj"));
        Assert.Equal(("PUT", null, true), (put.Method, put.Comp, put.HasContentMd5));
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
        Assert.All(requests.Where(r => r.Comp == "block"), r => Assert.True(r.HasContentMd5));
        Assert.Equal(2 * BlockSize + 1, (await _store.GetEntryAsync("large/obj"))!.Length);
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
