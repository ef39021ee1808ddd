using Azure.Data.Tables;
using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;

namespace Checkpointing.Grains.Tests;

/// <summary>Two silo processes joined through Azure Table membership in Azurite; the one hosting a run is SIGKILLed mid-commit.</summary>
public sealed class SiloFailoverTests
{
    [Fact]
    public async Task A_commit_completes_on_the_survivor_when_the_silo_hosting_the_run_is_killed_mid_report()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var clusterId = $"failover-{Guid.NewGuid():N}";
        await using var first = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey);
        await using var second = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey);
        using var clientHost = await StartClient(azurite.ConnectionString, clusterId);
        var client = clientHost.Services.GetRequiredService<IClusterClient>();
        var store = AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints");

        var job = new FakeJob(client, store, new RunId("ha", "run"), worldSize: 2);
        await job.Grain.Create(new PeriodicPolicy(10));
        job.Epoch = await job.Grain.StartAttempt();
        await job.SaveAsync("model_0000009", 9);

        // Mid-report: rank 0 has reported and waits for the commit; rank 1 has written its shard but not reported.
        // The grain holds reports in memory only, so after the kill rank 0 must send its report again.
        var plan0 = await job.Begin("model_0000019", 19, 0);
        var plan1 = await job.Begin("model_0000019", 19, 1);
        var report0 = await job.WriteShard(plan0, 19);
        var report1 = await job.WriteShard(plan1, 19);
        Assert.False((await job.Grain.ReportShard(report0)).Committed);
        var rank0 = Task.Run(() => Retry(() => job.ReportAndAwait(report0)));
        var host = (await job.Grain.Get()).HostedBy;
        var (victim, survivor) = host.Contains($":{first.SiloPort}:", StringComparison.Ordinal) ? (first, second) : (second, first);
        Assert.Contains($":{victim.SiloPort}:", host);
        victim.Kill();

        var committed1 = await Retry(() => job.ReportAndAwait(report1));
        var committed0 = await rank0;
        Assert.Equal(committed1, committed0);
        Assert.Equal(plan0.AttemptId, committed1.AttemptId);

        var view = await Retry(() => job.Grain.Get());
        Assert.Contains($":{survivor.SiloPort}:", view.HostedBy);
        Assert.Equal(["model_0000009", "model_0000019"], view.Catalog.Select(c => c.Name)); // exactly one entry for the checkpoint
        Assert.Equal("model_0000019", view.LastCheckpoint);
        Assert.Empty(view.Pending);
        var prefix = view.Catalog[^1].ManifestKey[..view.Catalog[^1].ManifestKey.LastIndexOf('/')];
        await NativeCheckpointReader.VerifyAsync(store, prefix, await NativeCheckpointReader.ReadManifestAsync(store, prefix));
        Assert.False(survivor.HasExited, survivor.Log);

        // The survivor shuts down gracefully on SIGTERM: it exits 0 and the run's state is durable.
        Assert.Equal(0, await survivor.TerminateAsync(TimeSpan.FromSeconds(60)));
        await using var replacement = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey);
        var reread = await Retry(() => job.Grain.Get());
        Assert.Equal(["model_0000009", "model_0000019"], reread.Catalog.Select(c => c.Name));
        Assert.Contains($":{replacement.SiloPort}:", reread.HostedBy);
    }

    [Fact]
    public async Task A_run_whose_silo_crashed_with_a_checkpoint_pending_is_swept_by_its_reminder_without_another_call()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var clusterId = $"reminder-{Guid.NewGuid():N}";
        var reminderTable = $"reminders{Guid.NewGuid():N}"[..24];
        var settings = new Dictionary<string, string>
        {
            ["CKPT_Runs__PendingTimeout"] = "00:00:03",
            ["CKPT_Runs__ReminderPeriod"] = "00:00:05",
            ["CKPT_Reminders__MinimumReminderPeriod"] = "00:00:01",
            ["CKPT_Storage__ReminderTable"] = reminderTable,
        };
        await using var first = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey, settings: settings);
        await using var second = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey, settings: settings);
        using var clientHost = await StartClient(azurite.ConnectionString, clusterId);
        var client = clientHost.Services.GetRequiredService<IClusterClient>();
        var store = AzureBlobStore.FromConnectionString(azurite.ConnectionString, "checkpoints");

        // Rank 0 reports; rank 1 never comes. The run's silo then dies and nobody calls the run again.
        var job = new FakeJob(client, store, new RunId("ha", "swept"), worldSize: 2);
        await job.Grain.Create(new PeriodicPolicy(10));
        job.Epoch = await job.Grain.StartAttempt();
        var plan = await job.Begin("model_0000009", 9, 0);
        Assert.False((await job.Grain.ReportShard(await job.WriteShard(plan, 9))).Committed);
        Assert.NotNull(await store.GetEntryAsync(plan.ShardKey));
        var table = new TableServiceClient(azurite.ConnectionString).GetTableClient(reminderTable);
        await Eventually.Equal(true, async () =>
        {
            try { return await table.QueryAsync<TableEntity>(maxPerPage: 1).AnyAsync(); }
            catch (Azure.RequestFailedException) { return false; } // the table is created with the first reminder
        });
        var host = (await job.Grain.Get()).HostedBy;
        var victim = host.Contains($":{first.SiloPort}:", StringComparison.Ordinal) ? first : second;
        victim.Kill();

        // Only storage is watched: the reminder fires on the survivor, which expires the checkpoint and deletes its shard.
        await Eventually.Equal(false, async () => await store.GetEntryAsync(plan.ShardKey) is not null, TimeSpan.FromSeconds(90));
        var view = await Retry(() => job.Grain.Get());
        Assert.Empty(view.Pending);
        Assert.Empty(view.Catalog);
        Assert.DoesNotContain($":{victim.SiloPort}:", view.HostedBy);
    }

    /// <summary>What a client does when the silo behind its call disappears: retry until the grain is reactivated elsewhere.</summary>
    private static async Task<T> Retry<T>(Func<Task<T>> call)
    {
        var deadline = DateTime.UtcNow.AddMinutes(2);
        while (true)
        {
            try
            {
                return await call();
            }
            catch (Exception e) when (e is TimeoutException or OrleansMessageRejectionException or SiloUnavailableException or OrleansException && DateTime.UtcNow < deadline)
            {
                await Task.Delay(500);
            }
        }
    }

    private static async Task<IHost> StartClient(string connectionString, string clusterId)
    {
        var builder = Host.CreateApplicationBuilder();
        builder.UseOrleansClient(client =>
        {
            client.UseAzureStorageClustering(o => o.TableServiceClient = new TableServiceClient(connectionString));
            client.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = clusterId;
                o.ServiceId = "checkpointing";
            });
            client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
            client.AddOutgoingGrainCallFilter(context =>
            {
                RequestContext.Set(TenantTokens.RequestContextKey, TestTenancy.Token("ha"));
                return context.Invoke();
            });
        });
        var host = builder.Build();
        await host.StartAsync();
        return host;
    }
}
