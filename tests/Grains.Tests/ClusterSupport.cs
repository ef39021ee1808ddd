using System.Text.Json.Nodes;
using Checkpointing.Abstractions;
using Checkpointing.Abstractions.Runs;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Checkpointing.Grains.Tests;

/// <summary>Test keys and tokens: the operator's key signs every tenant's credential.</summary>
public static class TestTenancy
{
    public static readonly byte[] Key = Enumerable.Range(1, 32).Select(i => (byte)i).ToArray();
    public static string SigningKey => Convert.ToBase64String(Key);

    public static string Token(string tenant) => TenantTokens.Issue(Key, tenant, DateTimeOffset.UtcNow.AddHours(1));

    /// <summary>Every grain call made by this async flow carries <paramref name="tenant"/>'s credential.</summary>
    public static void ActAs(string tenant) => Orleans.Runtime.RequestContext.Set(TenantTokens.RequestContextKey, Token(tenant));
}

/// <summary>
/// Two real silos in this process with memory grain storage, the tenant-token filter, and a
/// folder checkpoint store, as the protocol tests need. Short pending timeout so expiry is testable.
/// </summary>
public sealed class TwoSiloCluster : IAsyncLifetime
{
    public string StoreRoot { get; } = Directory.CreateTempSubdirectory("grain-store-").FullName;
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IClusterClient Client => Cluster.Client;
    public FileSystemStore Store => new(StoreRoot);

    public async Task InitializeAsync()
    {
        var builder = new InProcessTestClusterBuilder(2);
        var root = StoreRoot;
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddMemoryGrainStorage(GrainStorage.Runs);
            silo.AddMemoryGrainStorage(GrainStorage.Tenants);
            silo.AddIncomingGrainCallFilter<TenantAccessFilter>();
            silo.Services.AddSingleton(TimeProvider.System);
            silo.Services.AddSingleton<ICheckpointStoreProvider>(new CheckpointStoreProvider(new FileSystemStore(root)));
            silo.Services.Configure<TenancyOptions>(o => o.SigningKey = TestTenancy.SigningKey);
            silo.Services.Configure<RunGrainOptions>(o =>
            {
                o.PendingTimeout = TimeSpan.FromSeconds(2);
                o.SweepPeriod = TimeSpan.FromMilliseconds(300);
            });
        });
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Directory.Delete(StoreRoot, recursive: true);
    }
}

/// <summary>Plays the ranks of a training job: real shards with real bytes, through the real protocol.</summary>
public sealed class FakeJob(IClusterClient client, ICheckpointStore store, RunId run, int worldSize, int tensors = 12)
{
    public ITrainingRunGrain Grain => client.GetGrain<ITrainingRunGrain>(run.Key);
    public long Epoch { get; set; }

    /// <summary>Tensors of deterministic content: the same name at the same iteration has the same bytes on every rank.</summary>
    public List<NamedTensor> Tensors(long iteration) => Enumerable.Range(0, tensors).Select(i =>
    {
        var t = HostTensor.Allocate(TensorDType.F32, [16 * (i + 1)]);
        new Random((int)(iteration * 1000 + i)).NextBytes(t.Data);
        return new NamedTensor($"model/layer{i}.weight", t);
    }).ToList();

    public static string State(long iteration, IEnumerable<NamedTensor> tensors)
    {
        var model = new JsonObject();
        foreach (var t in tensors) model[t.Key["model/".Length..]] = new JsonObject { [StateTree.TensorMarker] = t.Key };
        return new JsonObject { ["model"] = model, ["iteration"] = iteration }.ToJsonString();
    }

    public Task<SavePlan> Begin(string name, long iteration, int rank) =>
        Grain.BeginCheckpoint(new BeginCheckpointRequest(name, iteration, worldSize, rank, Epoch,
            Tensors(iteration).Select(t => new TensorSize(t.Key, t.ByteLength)).ToList()));

    public async Task<ShardReport> WriteShard(SavePlan plan, long iteration)
    {
        var tensorList = Tensors(iteration);
        return await RankShardWriter.WriteAsync(store, plan, Epoch, tensorList, plan.Rank == 0 ? State(iteration, tensorList) : null);
    }

    /// <summary>All ranks begin, write and report concurrently; returns the acks.</summary>
    public async Task<ShardAck[]> SaveAsync(string name, long iteration) =>
        await Task.WhenAll(Enumerable.Range(0, worldSize).Select(async rank =>
        {
            var plan = await Begin(name, iteration, rank);
            return await Grain.ReportShard(await WriteShard(plan, iteration));
        }));
}
