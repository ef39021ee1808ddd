using System.Security.Cryptography;
using Checkpointing.Contracts;
using Checkpointing.Processes;

namespace Checkpointing.Cli.Tests;

/// <summary>A real silo process (dev mode) over a real Azurite, and a tenant credential for it.</summary>
public sealed class TestSilo : IAsyncDisposable
{
    private readonly ChildProcess _process;
    private readonly bool _ownsAzurite;

    private TestSilo(Azurite azurite, bool ownsAzurite, ChildProcess process, int gatewayPort, int httpPort, string signingKey)
    {
        _ownsAzurite = ownsAzurite;
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

    public static Task<TestSilo> StartAsync() => StartAsync(azurite: null, storage: null);

    /// <summary>
    /// A silo over <paramref name="azurite"/> (the caller's, which it keeps; or a fresh one of the silo's own when null), reaching
    /// it by connection string, or through <paramref name="storage"/>'s settings and environment when given.
    /// </summary>
    public static async Task<TestSilo> StartAsync(Azurite? azurite, IReadOnlyDictionary<string, string>? storage)
    {
        var ownsAzurite = azurite is null;
        azurite ??= await Azurite.StartAsync(RepoRoot);
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var (siloPort, gateway, health) = (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
        var siloDll = CliRunner.Ckpt.Dll.Replace(Path.Combine("src", "Cli"), Path.Combine("src", "Silo"), StringComparison.Ordinal).Replace("ckpt.dll", "Checkpointing.Silo.dll", StringComparison.Ordinal);
        var environment = new Dictionary<string, string>
        {
            ["CKPT_Silo__SiloPort"] = $"{siloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{gateway}",
            ["CKPT_Silo__HealthPort"] = $"{health}",
            ["CKPT_Tenancy__SigningKey"] = key,
        };
        foreach (var (name, value) in storage ?? new Dictionary<string, string> { ["CKPT_Storage__ConnectionString"] = azurite.ConnectionString }) environment[name] = value;
        var silo = ChildProcess.Start("dotnet", [siloDll], environment);
        try
        {
            await silo.WaitReadyAsync(health);
            return new TestSilo(azurite, ownsAzurite, silo, gateway, health, key);
        }
        catch
        {
            await silo.DisposeAsync();
            if (ownsAzurite) await azurite.DisposeAsync();
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
        if (_ownsAzurite) await Azurite.DisposeAsync();
    }
}
