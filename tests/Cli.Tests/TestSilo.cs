using System.Security.Cryptography;
using Checkpointing.Contracts;
using Checkpointing.Processes;

namespace Checkpointing.Cli.Tests;

/// <summary>A real silo process (dev mode) over a real Azurite, and a tenant credential for it.</summary>
public sealed class TestSilo : IAsyncDisposable
{
    private readonly ChildProcess _process;

    private TestSilo(Azurite azurite, ChildProcess process, int gatewayPort, int httpPort, string signingKey)
    {
        HttpPort = httpPort;
        Azurite = azurite;
        _process = process;
        GatewayPort = gatewayPort;
        SigningKey = signingKey;
    }

    public Azurite Azurite { get; }
    public int GatewayPort { get; }
    /// <summary>The silo's HTTP port: the dashboard, /api/v1, /metrics.</summary>
    public int HttpPort { get; }
    public string SigningKey { get; }

    public static string RepoRoot => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(CliRunner.Ckpt.Dll)!, "..", "..", "..", "..", "..", ".."));

    public static async Task<TestSilo> StartAsync()
    {
        var azurite = await Azurite.StartAsync(RepoRoot);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var (siloPort, gateway, health) = (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
        var siloDll = CliRunner.Ckpt.Dll.Replace(Path.Combine("src", "Cli"), Path.Combine("src", "Silo"), StringComparison.Ordinal).Replace("ckpt.dll", "Checkpointing.Silo.dll", StringComparison.Ordinal);
        var silo = ChildProcess.Start("dotnet", [siloDll], new Dictionary<string, string>
        {
            ["CKPT_Silo__SiloPort"] = $"{siloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{gateway}",
            ["CKPT_Silo__HealthPort"] = $"{health}",
            ["CKPT_Storage__ConnectionString"] = azurite.ConnectionString,
            ["CKPT_Tenancy__SigningKey"] = key,
        });
        try
        {
            await silo.WaitReadyAsync(health);
            return new TestSilo(azurite, silo, gateway, health, key);
        }
        catch
        {
            await silo.DisposeAsync();
            await azurite.DisposeAsync();
            throw;
        }
    }

    public string Token(string tenant) => TenantTokens.Issue(Convert.FromBase64String(SigningKey), tenant, DateTimeOffset.UtcNow.AddHours(1));

    /// <summary>The cluster options of a CLI command acting for <paramref name="tenant"/>.</summary>
    public string[] ClusterArgs(string tenant) =>
        ["--silo", $"127.0.0.1:{GatewayPort}", "--token", Token(tenant)];

    public async ValueTask DisposeAsync()
    {
        await _process.DisposeAsync();
        await Azurite.DisposeAsync();
    }
}
