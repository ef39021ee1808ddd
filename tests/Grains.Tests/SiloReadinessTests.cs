using Azure.Storage.Blobs;
using Azure.Storage.Sas;
using Checkpointing.Processes;
using Checkpointing.TestSupport;

namespace Checkpointing.Grains.Tests;

/// <summary>A real silo process against a real Azurite: /readyz follows the storage, /healthz stays live.</summary>
public sealed class SiloReadinessTests
{
    [Theory]
    [InlineData("CKPT_Runs__CatalogTailLimit", "2", "Runs:CatalogTailLimit must be at least 4.")]
    [InlineData("CKPT_Tenancy__SigningKey", "", "Tenancy:SigningKey must be at least 32 bytes (base64).")]
    [InlineData("CKPT_Tenancy__SigningKey", "not base64!", "Tenancy:SigningKey is not base64.")]
    [InlineData("CKPT_Runs__SweepPeriod", "soon", "'Runs:SweepPeriod'")]
    [InlineData("CKPT_Runs__TenantReportDelay", "-00:00:01", "Runs:TenantReportDelay must not be negative.")]
    public async Task A_silo_with_an_invalid_setting_exits_1_with_one_line_naming_it(string variable, string value, string named)
    {
        await using var silo = await SiloProcess.StartAsync($"invalid-{Guid.NewGuid():N}", "UseDevelopmentStorage=true", TestTenancy.SigningKey, mode: "Dev",
            new Dictionary<string, string> { [variable] = value }, waitUntilReady: false);
        Assert.Equal(1, await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var line = Assert.Single(silo.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("silo: invalid configuration: ", line);
        Assert.Contains(named, line);
    }

    [Fact]
    public async Task A_silo_whose_http_port_is_taken_exits_1_and_its_last_line_names_the_address()
    {
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, Azurite.FreePort());
        taken.Start();
        try
        {
            var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
            var inMemory = new Dictionary<string, string> { ["CKPT_Storage__GrainState"] = "Memory", ["CKPT_Storage__Checkpoints"] = "Memory" };
            await using var silo = await SiloProcess.StartAsync($"taken-{Guid.NewGuid():N}", "UseDevelopmentStorage=true", TestTenancy.SigningKey, mode: "Dev",
                inMemory, waitUntilReady: false, ports: (Azurite.FreePort(), Azurite.FreePort(), port));
            Assert.Equal(1, await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            var lines = silo.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            // The host's log before it may carry exceptions (it is the silo's log); what ends the process is one line.
            var last = lines[^1];
            Assert.StartsWith("silo: could not run: ", last);
            Assert.Contains($":{port}", last);
            Assert.Contains("address already in use", last, StringComparison.OrdinalIgnoreCase);
        }
        finally { taken.Stop(); }
    }

    /// <summary>
    /// Another silo holds the port: its listener, like Orleans', sets address reuse (SO_REUSEPORT on Linux), with which
    /// a second Orleans listener would bind the same port and share its connections.
    /// </summary>
    [Theory]
    [InlineData("silo")]
    [InlineData("gateway")]
    public async Task A_silo_whose_silo_or_gateway_port_another_silo_listens_on_exits_1_naming_the_port(string role)
    {
        using var taken = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp);
        taken.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.ReuseAddress, true);
        taken.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, Azurite.FreePort()));
        taken.Listen();
        var port = ((System.Net.IPEndPoint)taken.LocalEndPoint!).Port;
        var inMemory = new Dictionary<string, string> { ["CKPT_Storage__GrainState"] = "Memory", ["CKPT_Storage__Checkpoints"] = "Memory" };
        var ports = role == "silo" ? (port, Azurite.FreePort(), Azurite.FreePort()) : (Azurite.FreePort(), port, Azurite.FreePort());

        await using var silo = await SiloProcess.StartAsync($"taken-{Guid.NewGuid():N}", "UseDevelopmentStorage=true", TestTenancy.SigningKey, mode: "Dev",
            inMemory, waitUntilReady: false, ports: ports);

        Assert.Equal(1, await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        var last = silo.Log.Split('\n', StringSplitOptions.RemoveEmptyEntries)[^1];
        Assert.Equal($"silo: could not run: IOException: the {role} port {port} on 127.0.0.1 is already in use by another process (another silo?).", last);
    }

    [Fact]
    public async Task Readiness_answers_503_naming_storage_while_it_is_down_and_recovers_when_it_is_back()
    {
        var azurite = await RepoPaths.StartAzurite();
        try
        {
            await using var silo = await SiloProcess.StartAsync($"ready-{Guid.NewGuid():N}", azurite.ConnectionString, TestTenancy.SigningKey, mode: "Dev");
            Assert.Contains("\"ready\"", await silo.WaitForAsync("/readyz", 200));

            await azurite.StopAsync();
            var down = await silo.WaitForAsync("/readyz", 503);
            Assert.Contains("storage unreachable: blob container", down);
            Assert.Contains($"127.0.0.1:{azurite.BlobPort}", down);
            Assert.DoesNotContain('\n', down);
            Assert.Equal(200, (await silo.ProbeAsync("/healthz")).Status);

            azurite = await azurite.RestartAsync(RepoPaths.Root);
            Assert.Contains("\"ready\"", await silo.WaitForAsync("/readyz", 200));
        }
        finally
        {
            await azurite.DisposeAsync();
        }
    }

    [Fact]
    public async Task A_credential_scoped_to_the_checkpoint_container_makes_the_silo_ready_and_a_refused_one_is_named()
    {
        await using var azurite = await RepoPaths.StartAzurite();
        var blobs = new BlobServiceClient(azurite.ConnectionString);
        async Task<string> ScopedTo(string container)
        {
            var client = blobs.GetBlobContainerClient(container);
            await client.CreateIfNotExistsAsync();
            var sas = client.GenerateSasUri(BlobContainerSasPermissions.All, DateTimeOffset.UtcNow.AddHours(1)).Query.TrimStart('?');
            return $"BlobEndpoint=http://127.0.0.1:{azurite.BlobPort}/devstoreaccount1;SharedAccessSignature={sas}";
        }
        var settings = new Dictionary<string, string> { ["CKPT_Storage__GrainState"] = "Memory", ["CKPT_Storage__CheckpointContainer"] = "checkpoints" };

        await using (var scoped = await SiloProcess.StartAsync($"scoped-{Guid.NewGuid():N}", await ScopedTo("checkpoints"), TestTenancy.SigningKey, mode: "Dev", settings))
        {
            Assert.Contains("\"ready\"", await scoped.WaitForAsync("/readyz", 200));
        }

        await using var refused = await SiloProcess.StartAsync($"refused-{Guid.NewGuid():N}", await ScopedTo("elsewhere"), TestTenancy.SigningKey, mode: "Dev", settings, waitUntilReady: false);
        var body = await refused.WaitForAsync("/readyz", 503, "storage refuses access");
        Assert.Contains("/checkpoints", body);
        Assert.Contains("403", body);
        Assert.DoesNotContain("sig=", body);
    }
}
