using System.Net;
using Azure.Data.Tables;
using Checkpointing.Processes;
using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

/// <summary>
/// Silo:Mode=Kubernetes with the downward-API environment set by hand and a Kubernetes API of our own: each silo labels its
/// pod with its cluster, joins the membership table under its pod's name, and serves HTTP on every interface.
/// </summary>
public sealed class KubernetesModeTests
{
    [Fact]
    public async Task Two_pods_label_themselves_and_join_one_cluster_under_their_pod_names()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        await using var api = FakeKubernetesApi.Start("training");
        api.AddPod("silo-0");
        api.AddPod("silo-1");
        var clusterId = $"k8s-{Guid.NewGuid():N}"[..20];
        Dictionary<string, string> Pod(string name) => new()
        {
            ["POD_NAME"] = name,
            ["POD_NAMESPACE"] = api.Namespace,
            ["POD_IP"] = "127.0.0.1",
            ["KUBECONFIG"] = api.KubeconfigPath,
        };

        await using var first = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey, mode: "Kubernetes", settings: Pod("silo-0"));
        await using var second = await SiloProcess.StartAsync(clusterId, azurite.ConnectionString, TestTenancy.SigningKey, mode: "Kubernetes", settings: Pod("silo-1"));

        foreach (var pod in new[] { "silo-0", "silo-1" })
            Assert.True(api.Labels(pod).TryGetValue("orleans/clusterId", out var labelled) && labelled == clusterId, $"{pod} was not labelled with its cluster");
        var members = new TableClient(azurite.ConnectionString, "OrleansSiloInstances");
        await Eventually.Equal<IReadOnlyList<string?>>(["silo-0", "silo-1"], async () =>
        {
            var rows = await members.QueryAsync<TableEntity>(e => e.PartitionKey == clusterId).ToListAsync();
            return rows.Where(r => r.GetString("Status") == "Active").Select(r => r.GetString("SiloName")).Order().ToList();
        }, TimeSpan.FromSeconds(60));
        // HTTP on every interface: 127.0.0.2 reaches only a socket bound to 0.0.0.0, not one bound to 127.0.0.1.
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        using var health = await http.GetAsync($"http://127.0.0.2:{first.HealthPort}/healthz");
        Assert.Equal(HttpStatusCode.OK, health.StatusCode);
        Assert.Contains("\"mode\":\"Kubernetes\"", await health.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
