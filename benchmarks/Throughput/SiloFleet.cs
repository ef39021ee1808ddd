using System.Net.Http.Json;
using Checkpointing.Processes;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// Silo processes of one dev-mode cluster on this machine: the first is the primary the others join.
/// Each gets its own free silo, gateway and health ports; logging is quiet so it does not compete for CPU.
/// </summary>
public sealed class SiloFleet : IAsyncDisposable
{
    private readonly List<(ChildProcess Process, int GatewayPort, int HealthPort)> _silos = [];
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    private SiloFleet() { }

    public IReadOnlyList<string> Gateways => _silos.Select(s => $"127.0.0.1:{s.GatewayPort}").ToList();

    public IEnumerable<int> Pids => _silos.Select(s => s.Process.Id);

    /// <param name="storage">The silos' <c>CKPT_Storage__*</c> and <c>CKPT_Tenancy__*</c> settings.</param>
    public static async Task<SiloFleet> StartAsync(string siloDll, int count, IReadOnlyDictionary<string, string> storage)
    {
        var fleet = new SiloFleet();
        try
        {
            int? primaryPort = null;
            for (var i = 0; i < count; i++)
            {
                var (siloPort, gatewayPort, healthPort) = (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
                var environment = new Dictionary<string, string>(storage)
                {
                    ["CKPT_Silo__Mode"] = "Dev",
                    ["CKPT_Silo__SiloPort"] = $"{siloPort}",
                    ["CKPT_Silo__GatewayPort"] = $"{gatewayPort}",
                    ["CKPT_Silo__HealthPort"] = $"{healthPort}",
                    ["CKPT_Logging__LogLevel__Default"] = "Warning",
                };
                if (primaryPort is { } primary) environment["CKPT_Silo__PrimarySiloPort"] = $"{primary}";
                fleet._silos.Add((ChildProcess.Start("dotnet", [siloDll], environment), gatewayPort, healthPort));
                // The primary must be up before the others can join it.
                if (primaryPort is null) await fleet._silos[0].Process.WaitReadyAsync(healthPort);
                primaryPort ??= siloPort;
            }
            foreach (var silo in fleet._silos.Skip(1)) await silo.Process.WaitReadyAsync(silo.HealthPort);
            return fleet;
        }
        catch
        {
            await fleet.DisposeAsync();
            throw;
        }
    }

    /// <summary>Throws, with the silo's last words, when a silo has exited.</summary>
    public void ThrowIfAnyExited()
    {
        if (_silos.FirstOrDefault(s => s.Process.HasExited) is ({ } exited, _, _))
            throw new InvalidOperationException($"silo {exited.Id} exited with {exited.ExitCode}: {exited.ErrorTail.Split('\n')[^1]}");
    }

    /// <summary>Grain-state writes and JIT-compiled methods of every silo so far (their <c>/stats</c>).</summary>
    public async Task<SiloStats> StatsAsync()
    {
        var total = SiloStats.Zero;
        foreach (var silo in _silos)
        {
            total += await _http.GetFromJsonAsync<SiloStats>(new Uri($"http://127.0.0.1:{silo.HealthPort}/stats"))
                ?? throw new InvalidOperationException($"silo {silo.Process.Id} answered /stats with nothing");
        }
        return total;
    }

    public async ValueTask DisposeAsync()
    {
        await Task.WhenAll(_silos.Select(s => s.Process.StopAsync(TimeSpan.FromSeconds(20))));
        foreach (var silo in _silos) await silo.Process.DisposeAsync();
        _http.Dispose();
    }
}
