using System.Diagnostics;
using Checkpointing.Processes;
using Checkpointing.TestSupport;

namespace Checkpointing.TestSupport;

/// <summary>A real Checkpointing.Silo process (cluster mode with Azure Table membership, or dev mode), started and killed by PID.</summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly OutputTail _log = new(40);

    private SiloProcess(Process process, int siloPort, int gatewayPort, int healthPort)
    {
        _process = process;
        SiloPort = siloPort;
        GatewayPort = gatewayPort;
        HealthPort = healthPort;
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) _log.Add(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) _log.Add(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int SiloPort { get; }
    public int GatewayPort { get; }
    public int HealthPort { get; }
    public bool HasExited => _process.HasExited;

    /// <summary>Waits for the process to end on its own (all its output read); returns the exit code.</summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cancel = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cancel.Token);
        return _process.ExitCode;
    }
    public string Log => string.Join('\n', _log.Lines);

    public static string SiloDll
    {
        get
        {
            var testBin = new DirectoryInfo(AppContext.BaseDirectory);
            var dll = Path.Combine(RepoPaths.Root, "src", "Silo", "bin", testBin.Parent!.Parent!.Name, testBin.Parent.Name, testBin.Name, "Checkpointing.Silo.dll");
            return File.Exists(dll) ? dll : throw new FileNotFoundException($"the silo is not built at {dll}; run `dotnet build Checkpointing.slnx`.");
        }
    }

    /// <param name="settings">More CKPT_ environment settings, overriding the defaults here.</param>
    /// <param name="waitUntilReady">Return only once /readyz answers 200.</param>
    /// <param name="ports">Silo, gateway and HTTP ports (a replacement for a killed silo on its address); free ones when null.</param>
    public static async Task<SiloProcess> StartAsync(string clusterId, string connectionString, string signingKey, string mode = "Cluster",
        IReadOnlyDictionary<string, string>? settings = null, bool waitUntilReady = true, (int Silo, int Gateway, int Http)? ports = null)
    {
        var (siloPort, gatewayPort, healthPort) = ports ?? (Azurite.FreePort(), Azurite.FreePort(), Azurite.FreePort());
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(SiloDll);
        var env = new Dictionary<string, string>
        {
            ["CKPT_Silo__Mode"] = mode,
            ["CKPT_Silo__ClusterId"] = clusterId,
            ["CKPT_Silo__SiloPort"] = $"{siloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{gatewayPort}",
            ["CKPT_Silo__HealthPort"] = $"{healthPort}",
            ["CKPT_Storage__ConnectionString"] = connectionString,
            ["CKPT_Storage__Checkpoints"] = "AzureBlob",
            ["CKPT_Tenancy__SigningKey"] = signingKey,
            // Declare a killed silo dead within seconds rather than the production default of about a minute.
            ["CKPT_Membership__ProbeTimeout"] = "00:00:01",
            ["CKPT_Membership__NumMissedProbesLimit"] = "2",
            ["CKPT_Membership__NumProbedSilos"] = "1",
            ["CKPT_Membership__NumVotesForDeathDeclaration"] = "1",
        };
        foreach (var (k, v) in env.Concat(settings ?? new Dictionary<string, string>())) info.Environment[k] = v;
        var silo = new SiloProcess(Process.Start(info) ?? throw new InvalidOperationException("could not start the silo"), siloPort, gatewayPort, healthPort);
        if (waitUntilReady) await silo.WaitForAsync("/readyz", 200);
        return silo;
    }

    /// <summary>GET <paramref name="path"/> on the health port: the status code and body, or (0, why) when nothing answers.</summary>
    public async Task<(int Status, string Body)> ProbeAsync(string path)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var response = await http.GetAsync($"http://127.0.0.1:{HealthPort}{path}");
            return ((int)response.StatusCode, await response.Content.ReadAsStringAsync());
        }
        catch (Exception e) when (e is HttpRequestException or TaskCanceledException)
        {
            return (0, e.Message);
        }
    }

    /// <summary>Polls <paramref name="path"/> until it answers <paramref name="status"/> (with a body containing <paramref name="containing"/>); returns that answer's body.</summary>
    public async Task<string> WaitForAsync(string path, int status, string containing = "")
    {
        var deadline = Stopwatch.StartNew();
        var last = (Status: 0, Body: "");
        while (deadline.Elapsed < TimeSpan.FromSeconds(90))
        {
            if (_process.HasExited) throw new InvalidOperationException($"silo exited with {_process.ExitCode}:\n{Log}");
            last = await ProbeAsync(path);
            if (last.Status == status && last.Body.Contains(containing, StringComparison.Ordinal)) return last.Body;
            await Task.Delay(250);
        }
        throw new TimeoutException($"silo on port {SiloPort}: {path} did not answer {status} within 90 s (last: {last.Status} {last.Body}):\n{Log}");
    }

    /// <summary>SIGKILL: no graceful shutdown, no deactivation, like a machine failure.</summary>
    public void Kill()
    {
        _process.Kill(entireProcessTree: true);
        _process.WaitForExit();
    }

    /// <summary>SIGTERM: the host's graceful shutdown (running calls finish, grains deactivate); returns the exit code.</summary>
    public async Task<int> TerminateAsync(TimeSpan grace)
    {
        using (var kill = Process.Start("kill", ["-TERM", $"{_process.Id}"])) await kill.WaitForExitAsync();
        using var timeout = new CancellationTokenSource(grace);
        await _process.WaitForExitAsync(timeout.Token);
        return _process.ExitCode;
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
