using System.IO.Hashing;
using System.Net;
using System.Net.Http.Headers;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Grains.Tests;

/// <summary>A memory-tier holder over real HTTP on loopback (docs/memory-tier.md): who may reach it, what it keeps, and its bounds.</summary>
public sealed class HolderServerTests : IAsyncLifetime
{
    private static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    private readonly string _token = TenantTokens.Issue(Key, "acme", DateTimeOffset.UtcNow.AddHours(1));
    private readonly HttpClient _http = HolderClient.CreateHttp();
    private HolderServer _server = null!;

    public async Task InitializeAsync() => _server = await HolderServer.StartAsync(new HolderOptions { TenantToken = _token, Host = "h0", MaxBytes = 1 << 20 });

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        _http.Dispose();
    }

    private HolderClient Client(string token) => new(_http, token);
    private static SnapshotKey Key0(string tenant = "acme", long iteration = 9) => new(new RunId(tenant, "r1"), 0, 1, iteration);
    private static (string, ReadOnlyMemory<byte>)[] Objects(int size, byte fill) => [("manifest.json", new byte[] { 1, 2, 3 }), ("shard-0.safetensors", Enumerable.Repeat(fill, size).ToArray())];

    [Fact]
    public async Task A_put_snapshot_comes_back_byte_for_byte_and_is_counted_in_the_holders_bytes()
    {
        await Client(_token).PutAsync([_server.Ref], Key0(), Objects(1000, 7), null, CancellationToken.None);
        var into = new MemoryStore();
        var fetched = await Client(_token).FetchAsync(_server.Ref, Key0(), into, "f", CancellationToken.None);

        Assert.Equal(1003, fetched);
        Assert.Equal(Enumerable.Repeat((byte)7, 1000), into.Bytes("f/shard-0.safetensors").ToArray());
        Assert.Equal([1, 2, 3], into.Bytes("f/manifest.json").ToArray());
        Assert.Equal(new HolderStats(1003, 1 << 20, 1, 0), await Client(_token).StatsAsync(_server.Ref, CancellationToken.None));
    }

    [Fact]
    public async Task Another_token_gets_401_another_tenants_path_gets_403_and_neither_sees_the_bytes()
    {
        await Client(_token).PutAsync([_server.Ref], Key0(), Objects(10, 1), null, CancellationToken.None);
        var otherTenant = TenantTokens.Issue(Key, "evil", DateTimeOffset.UtcNow.AddHours(1));
        var forged = TenantTokens.Issue(new byte[32], "acme", DateTimeOffset.UtcNow.AddHours(1));

        foreach (var token in new[] { otherTenant, forged, "" })
        {
            var refused = await Assert.ThrowsAsync<HolderException>(() => Client(token).FetchAsync(_server.Ref, Key0(), new MemoryStore(), "f", CancellationToken.None));
            Assert.Contains("401", refused.Message);
        }
        var elsewhere = await Assert.ThrowsAsync<HolderException>(() => Client(_token).PutAsync([_server.Ref], Key0(tenant: "evil"), Objects(10, 1), null, CancellationToken.None));
        Assert.Contains("403", elsewhere.Message);
        // A raw request with no token at all.
        Assert.Equal(HttpStatusCode.Unauthorized, (await _http.GetAsync($"{_server.Endpoint}/{Key0().Path}/manifest.json")).StatusCode);
    }

    [Fact]
    public async Task An_object_whose_bytes_do_not_match_its_checksum_is_refused_and_nothing_of_it_is_kept()
    {
        using var request = new HttpRequestMessage(HttpMethod.Put, $"{_server.Endpoint}/{Key0().Path}/manifest.json") { Content = new ByteArrayContent([1, 2, 3]) };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        request.Headers.Add(HolderServer.ChecksumHeader, (Crc64.HashToUInt64([1, 2, 4]) ^ 0).ToString("x16"));
        var response = await _http.SendAsync(request);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("CRC-64", await response.Content.ReadAsStringAsync());
        Assert.Equal(0, (await Client(_token).StatsAsync(_server.Ref, CancellationToken.None)).BytesHeld);
    }

    [Fact]
    public async Task A_snapshot_is_served_only_once_complete_and_a_completion_that_does_not_match_its_objects_is_refused()
    {
        using var put = new HttpRequestMessage(HttpMethod.Put, $"{_server.Endpoint}/{Key0().Path}/manifest.json") { Content = new ByteArrayContent([1, 2, 3]) };
        put.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        put.Headers.Add(HolderServer.ChecksumHeader, Crc64.HashToUInt64([1, 2, 3]).ToString("x16"));
        Assert.Equal(HttpStatusCode.NoContent, (await _http.SendAsync(put)).StatusCode);

        var incomplete = await Assert.ThrowsAsync<HolderException>(() => Client(_token).FetchAsync(_server.Ref, Key0(), new MemoryStore(), "f", CancellationToken.None));
        Assert.Contains("404", incomplete.Message);
        using var complete = new HttpRequestMessage(HttpMethod.Post, $"{_server.Endpoint}/{Key0().Path}/complete")
        {
            Content = new StringContent("""{"objects": {"manifest.json": 3, "shard-0.safetensors": 10}}"""),
        };
        complete.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _token);
        var refused = await _http.SendAsync(complete);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("not manifest.json (3 bytes), shard-0.safetensors (10 bytes)", await refused.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task A_rank_keeps_at_most_two_complete_snapshots_and_a_transfer_past_the_budget_is_refused_with_507_keeping_nothing()
    {
        for (var iteration = 9; iteration <= 39; iteration += 10)
            await Client(_token).PutAsync([_server.Ref], Key0(iteration: iteration), Objects(100_000, (byte)iteration), null, CancellationToken.None);
        var stats = await Client(_token).StatsAsync(_server.Ref, CancellationToken.None);
        Assert.Equal((2, 2 * 100_003L), (stats.CompleteSnapshots, stats.BytesHeld));
        await Assert.ThrowsAsync<HolderException>(() => Client(_token).FetchAsync(_server.Ref, Key0(iteration: 19), new MemoryStore(), "f", CancellationToken.None));

        var tooBig = await Assert.ThrowsAsync<HolderException>(() =>
            Client(_token).PutAsync([_server.Ref], Key0(iteration: 49), Objects(1 << 20, 1), null, CancellationToken.None));
        Assert.Contains("507", tooBig.Message);
        Assert.Equal(stats, await Client(_token).StatsAsync(_server.Ref, CancellationToken.None));
    }

    [Fact]
    public async Task The_committed_snapshot_a_rank_names_survives_newer_ones_that_a_dead_attempt_left_uncommitted()
    {
        var committed = Key0(iteration: 9);
        await Client(_token).PutAsync([_server.Ref], committed, Objects(100, 9), null, CancellationToken.None);
        // A dead attempt left a newer complete snapshot that never committed; the next attempt puts its own, naming the committed one.
        await Client(_token).PutAsync([_server.Ref], Key0(iteration: 14), Objects(100, 14), committed, CancellationToken.None);
        await Client(_token).PutAsync([_server.Ref], Key0(iteration: 19) with { Epoch = 2 }, Objects(100, 19), committed, CancellationToken.None);

        Assert.Equal(103, await Client(_token).FetchAsync(_server.Ref, committed, new MemoryStore(), "f", CancellationToken.None));
        await Assert.ThrowsAsync<HolderException>(() => Client(_token).FetchAsync(_server.Ref, Key0(iteration: 14), new MemoryStore(), "g", CancellationToken.None));
        Assert.Equal(2, (await Client(_token).StatsAsync(_server.Ref, CancellationToken.None)).CompleteSnapshots);
    }
}
