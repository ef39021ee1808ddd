using System.Net;
using Azure.Storage.Blobs;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Integration.Tests;

/// <summary>
/// Ranks that hold no storage credential: the run grain grants each the one blob it writes and the blobs of committed
/// checkpoints it reads, as SAS URIs, and what tenant A's rank is given opens nothing of tenant B's.
/// </summary>
public sealed class StoreGrantTests
{
    [Fact]
    public async Task A_rank_with_no_storage_credential_saves_and_resumes_through_grants_that_open_nothing_of_another_tenant()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var store = AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints");
        await using var cluster = await TestClusters.StartAsync(store);
        var client = cluster.Client;

        // Tenant B: a committed checkpoint, saved by a rank that holds no credential either.
        TestTenancy.ActAs("b");
        var runB = new RunId("b", "other");
        var grainB = client.GetGrain<ITrainingRunGrain>(runB.Key);
        await grainB.Create(new PeriodicPolicy(1000));
        var agentB = await RunAgent.JoinAsync(client, runB, store: null, 0, 1, await grainB.StartAttempt(), ClusterRanks.Replica(seed: 7), []);
        await agentB.Checkpointer.SaveAsync("b_0");
        var manifestB = (await grainB.GetLastCheckpoint())!.ManifestKey;

        // Tenant A: saves, and a fresh rank resumes from it, all through grants.
        TestTenancy.ActAs("a");
        var runA = new RunId("a", "mine");
        var grainA = client.GetGrain<ITrainingRunGrain>(runA.Key);
        await grainA.Create(new PeriodicPolicy(1000));
        var epoch = await grainA.StartAttempt();
        var saver = ClusterRanks.Replica(seed: 1);
        var agentA = await RunAgent.JoinAsync(client, runA, store: null, 0, 1, epoch, saver, []);
        await agentA.Checkpointer.SaveAsync("a_0");
        var resumed = ClusterRanks.Replica(seed: 2);
        var reader = await RunAgent.JoinAsync(client, runA, store: null, 0, 1, epoch, resumed, []);
        await reader.Checkpointer.ResumeOrLoadAsync("", resume: true);
        Assert.True(ClusterRanks.SameWeights(saver, resumed), "the rank resumed through read grants did not load the saved weights");

        // What A's rank is given: a write grant for its next shard, read grants for its checkpoint.
        var pending = await grainA.BeginCheckpoint(new BeginCheckpointRequest("a_1", 1, 1, 0, epoch, TensorListSummary.Of([new TensorSize("x", 4)])));
        var write = (await grainA.GrantShardWrite("a_1", pending.AttemptId, 0, epoch))!;
        Assert.Equal(StoreLayout.FileKey(pending.CheckpointPrefix, pending.ShardPath), write.Key);
        var reads = await grainA.GrantCheckpointRead("a_0");
        Assert.Contains(reads, g => g.Key.EndsWith("/" + StoreLayout.ManifestFileName, StringComparison.Ordinal));
        Assert.All(reads, g => Assert.StartsWith(runA.StorePrefix + "/", g.Key, StringComparison.Ordinal));

        // Pointed at B's objects, A's signatures open nothing: not B's manifest, not a blob of B's run.
        using var http = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(reads[0].Access)).StatusCode);
        foreach (var grant in reads)
        {
            using var read = await http.GetAsync(Retarget(grant.Access, manifestB));
            Assert.Equal(HttpStatusCode.Forbidden, read.StatusCode);
        }
        using var put = new HttpRequestMessage(HttpMethod.Put, Retarget(write.Access, StoreLayout.FileKey(StoreLayout.CheckpointKey(runB.StorePrefix, "b_0"), "planted.safetensors")))
        {
            Content = new ByteArrayContent([1, 2, 3]),
        };
        put.Headers.Add("x-ms-blob-type", "BlockBlob");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(put)).StatusCode);
        // Nor does the read grant write, nor the write grant read.
        using var overwrite = new HttpRequestMessage(HttpMethod.Put, reads[0].Access) { Content = new ByteArrayContent([0]) };
        overwrite.Headers.Add("x-ms-blob-type", "BlockBlob");
        Assert.Equal(HttpStatusCode.Forbidden, (await http.SendAsync(overwrite)).StatusCode);
        // And A's token gets no grant of B's run at all.
        await Assert.ThrowsAsync<TenantAccessDeniedException>(() => grainB.GrantCheckpointRead("b_0"));
    }

    /// <summary>The same signature on another blob's path.</summary>
    private static Uri Retarget(Uri grant, string key) => new BlobUriBuilder(grant) { BlobName = key }.ToUri();
}
