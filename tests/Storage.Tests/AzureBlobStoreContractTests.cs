using Checkpointing.Storage;
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
public sealed class AzureBlobStoreContractTests(AzuriteFixture fixture) : StoreContractTests, IClassFixture<AzuriteFixture>
{
    private readonly AzureBlobStore _store = new(
        new BlobServiceClient(fixture.Azurite.ConnectionString, AzureBlobStore.CreateClientOptions(maxRetries: 1, networkTimeout: TimeSpan.FromSeconds(10)))
            .GetBlobContainerClient($"c{Guid.NewGuid():N}"),
        new AzureBlobStoreOptions { BlockSize = 256 << 10, MaxBlocksInFlight = 3 });

    protected override ICheckpointStore Store => _store;

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
