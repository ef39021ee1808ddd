using System.Collections.Concurrent;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Grains;
using Checkpointing.Storage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Serialization;
using Orleans.Storage;
using Orleans.TestingHost;

namespace Checkpointing.TestSupport;

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
/// folder checkpoint store, as the protocol tests need. A pending timeout short enough to test expiry
/// yet long enough for 50 runs of 8 ranks to report on a loaded 2-core machine.
/// </summary>
public sealed class TwoSiloCluster : IAsyncLifetime
{
    public string StoreRoot { get; } = Directory.CreateTempSubdirectory("grain-store-").FullName;
    public InProcessTestCluster Cluster { get; private set; } = null!;
    public IClusterClient Client => Cluster.Client;
    public FileSystemStore Store => new(StoreRoot);

    public async Task InitializeAsync() => Cluster = await TestClusters.StartAsync(new FileSystemStore(StoreRoot), TimeSpan.FromSeconds(10));

    public async Task DisposeAsync()
    {
        await Cluster.DisposeAsync();
        Directory.Delete(StoreRoot, recursive: true);
    }
}


public static class TestClusters
{
    /// <summary>Two in-process silos with memory grain state, the tenant filter and <paramref name="store"/> for checkpoints.</summary>
    public static async Task<InProcessTestCluster> StartAsync(ICheckpointStore store, TimeSpan? pendingTimeout = null)
    {
        var builder = new InProcessTestClusterBuilder(2);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddMemoryGrainStorage(GrainStorage.Runs);
            silo.Services.AddKeyedSingleton<IGrainStorage>(GrainStorage.Runs, (services, name) =>
                new MeasuredGrainStorage(MemoryGrainStorageFactory.Create(services, (string)name!), services.GetRequiredService<Serializer>()));
            silo.AddMemoryGrainStorage(GrainStorage.Tenants);
            silo.UseInMemoryReminderService();
            silo.AddIncomingGrainCallFilter(TenantReports.Count);
            silo.AddIncomingGrainCallFilter(ReserveBarrier.Hold);
            silo.AddCheckpointing(store, o => o.SigningKey = TestTenancy.SigningKey, o =>
            {
                o.PendingTimeout = pendingTimeout ?? TimeSpan.FromHours(1);
                o.SweepPeriod = TimeSpan.FromMilliseconds(300);
            });
        });
        // As ClusterConnection does for agents: trace context rides on grain calls.
        builder.ConfigureClient(client => client.AddActivityPropagation());
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }
}

/// <summary>How many retained-bytes reports each tenant grain of the in-process test silos received (observed, nothing changed).</summary>
public static class TenantReports
{
    private static readonly ConcurrentDictionary<string, int> Received = new(StringComparer.Ordinal);

    public static int Of(string tenant) => Received.GetValueOrDefault(tenant);

    internal static Task Count(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod.DeclaringType == typeof(ITenantAccounting) && context.InterfaceMethod.Name == nameof(ITenantAccounting.Report))
            Received.AddOrUpdate(context.TargetId.Key.ToString()!, 1, (_, count) => count + 1);
        return context.Invoke();
    }
}

/// <summary>
/// A barrier on the tenant's side of <see cref="ITenantAccounting.Reserve"/>: once armed for a tenant, its Reserve calls wait
/// (at most 20 s) until the given number have arrived, so that several runs' reservations are in flight at the tenant at
/// once. Unarmed, calls pass through.
/// </summary>
public static class ReserveBarrier
{
    private sealed record Armed(int Calls)
    {
        public int Arrived;
        public TaskCompletionSource AllArrived { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    private static readonly ConcurrentDictionary<string, Armed> ByTenant = new(StringComparer.Ordinal);

    public static void Arm(string tenant, int calls) => ByTenant[tenant] = new Armed(calls);

    public static void Disarm(string tenant) => ByTenant.TryRemove(tenant, out _);

    internal static async Task Hold(IIncomingGrainCallContext context)
    {
        if (context.InterfaceMethod.DeclaringType == typeof(ITenantAccounting) && context.InterfaceMethod.Name == nameof(ITenantAccounting.Reserve)
            && ByTenant.TryGetValue(context.TargetId.Key.ToString()!, out var armed))
        {
            if (Interlocked.Increment(ref armed.Arrived) >= armed.Calls) armed.AllArrived.TrySetResult();
            try { await armed.AllArrived.Task.WaitAsync(TimeSpan.FromSeconds(20)); }
            catch (TimeoutException) { }
        }
        await context.Invoke();
    }
}
