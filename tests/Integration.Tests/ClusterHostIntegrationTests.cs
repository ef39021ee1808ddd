using Checkpointing.Abstractions;
using Checkpointing.Contracts;
using Checkpointing.TestSupport;
using Checkpointing.TrainerAgent;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace Checkpointing.Integration.Tests;

/// <summary>A trainer on the generic host: AddCheckpointingCluster from configuration against a real silo process and Azurite.</summary>
public sealed class ClusterHostIntegrationTests
{
    [Fact]
    public async Task A_host_configured_from_settings_joins_a_run_and_its_steps_commit_checkpoints()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var clusterId = $"host-{Guid.NewGuid():N}";
        await using var silo = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey);
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Checkpointing:Cluster:Gateways:0"] = $"127.0.0.1:{silo.GatewayPort}",
            ["Checkpointing:Cluster:ClusterId"] = clusterId,
            ["Checkpointing:Cluster:TenantToken"] = TestTenancy.Token("it"),
            ["Checkpointing:Store:ConnectionString"] = azurite.ConnectionString,
        });
        builder.AddCheckpointingCluster();
        using var host = builder.Build();
        await host.StartAsync();

        var agents = host.Services.GetRequiredService<RunAgents>();
        var run = new RunId("it", "hosted");
        await agents.Run(run).Create(new PeriodicPolicy(5, MaxIter: 10));
        var agent = await agents.JoinAsync(run, 0, 1, await agents.Run(run).StartAttempt(), ClusterRanks.Replica(seed: 5), []);
        for (long iteration = 0; iteration < 10; iteration++) await agent.StepAsync(iteration);

        Assert.Equal(["model_0000004", "model_0000009", "model_final"], (await agents.Run(run).ListCheckpoints()).Select(c => c.Name));
        Assert.Equal("checkpoints", host.Services.GetRequiredService<IOptions<BlobCheckpointStoreOptions>>().Value.Container);
        await host.StopAsync();
    }

    [Fact]
    public void Missing_or_malformed_cluster_settings_are_refused_before_the_host_is_built_naming_each_key()
    {
        var builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Checkpointing:Cluster:Gateways:0"] = "silo-without-port",
            ["Checkpointing:Cluster:ConnectTimeout"] = "00:00:00",
        });

        var refused = Assert.Throws<OptionsValidationException>(() => builder.AddCheckpointingCluster());

        Assert.Contains("Checkpointing:Cluster:Gateways: 'silo-without-port' is not host:port.", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Checkpointing:Cluster:TenantToken is required", refused.Message, StringComparison.Ordinal);
        Assert.Contains("Checkpointing:Cluster:ConnectTimeout must be positive.", refused.Message, StringComparison.Ordinal);
    }
}
