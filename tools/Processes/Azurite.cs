using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace Checkpointing.Processes;

/// <summary>
/// A local Azurite (the repo's pinned npm package) on 127.0.0.1 with free ports, in memory: the
/// Azure Storage of dev mode, the demo job and the tests. Started and stopped by PID.
/// </summary>
public sealed class Azurite : IAsyncDisposable
{
    private readonly Process _process;
    private readonly IDisposable _exitGuard;

    private readonly AzuriteHost _host;
    private readonly AzuriteOAuth? _oauth;

    private Azurite(Process process, AzuriteHost host, AzuriteOAuth? oauth, int blobPort, int queuePort, int tablePort)
    {
        _process = process;
        _host = host;
        _oauth = oauth;
        // A launcher ended by SIGTERM or Ctrl-C never reaches DisposeAsync: do not leave node running behind it.
        _exitGuard = ProcessEnding.KillWithThisProgram(process);
        BlobPort = blobPort;
        QueuePort = queuePort;
        TablePort = tablePort;
    }

    public int BlobPort { get; }
    public int QueuePort { get; }
    public int TablePort { get; }

    public string ConnectionString =>
        $"DefaultEndpointsProtocol={Scheme};AccountName=devstoreaccount1;" +
        "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;" +
        $"BlobEndpoint={BlobServiceUri};QueueEndpoint={Scheme}://{_host.Address}:{QueuePort}/devstoreaccount1;TableEndpoint={TableServiceUri};";

    /// <summary>The blob service of the development account: what an identity (no key) is given.</summary>
    public Uri BlobServiceUri => new($"{Scheme}://{_host.Address}:{BlobPort}/devstoreaccount1");

    /// <summary>The table service of the development account.</summary>
    public Uri TableServiceUri => new($"{Scheme}://{_host.Address}:{TablePort}/devstoreaccount1");

    private string Scheme => _oauth is null ? "http" : "https";

    public int ProcessId => _process.Id;

    /// <param name="repoRoot">The repository whose node_modules holds the pinned Azurite.</param>
    /// <param name="ports">Blob, queue and table ports; free ones when null.</param>
    /// <param name="host">Where it listens and keeps its data; on 127.0.0.1 in memory when null.</param>
    public static async Task<Azurite> StartAsync(string repoRoot, (int Blob, int Queue, int Table)? ports = null, AzuriteHost? host = null, AzuriteOAuth? oauth = null)
    {
        host ??= AzuriteHost.Loopback;
        var root = repoRoot;
        var script = Path.Combine(root, "node_modules", "azurite", "dist", "src", "azurite.js");
        if (!File.Exists(script))
            throw new InvalidOperationException($"Azurite is not installed ({script} is missing): run scripts/bootstrap.sh, which runs `npm ci` with the pinned package-lock.json.");
        var (blob, queue, table) = ports ?? (FreePort(), FreePort(), FreePort());
        var info = new ProcessStartInfo(host.Launcher.Count > 0 ? host.Launcher[0] : "node")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = Path.GetTempPath(),
        };
        foreach (var arg in host.Launcher.Skip(1).Concat(host.Launcher.Count > 0 ? ["node"] : [])) info.ArgumentList.Add(arg);
        foreach (var arg in new[]
        {
            script, "--silent", "--skipApiVersionCheck", "--disableProductStyleUrl",
            "--blobHost", host.Address, "--blobPort", $"{blob}",
            "--queueHost", host.Address, "--queuePort", $"{queue}",
            "--tableHost", host.Address, "--tablePort", $"{table}",
        }.Concat(host.Location is { } location ? ["--location", location] : ["--inMemoryPersistence"])
         .Concat(oauth is null ? [] : ["--cert", oauth.CertificatePath, "--key", oauth.KeyPath, "--oauth", "basic"])
         // For a request Azurite answers strangely: AZURITE_DEBUG_LOG=FILE makes it log every request and its reasoning there.
         .Concat(Environment.GetEnvironmentVariable("AZURITE_DEBUG_LOG") is { Length: > 0 } debug ? ["--debug", debug] : [])) info.ArgumentList.Add(arg);
        var process = Process.Start(info) ?? throw new InvalidOperationException("could not start node for Azurite");
        var lastWords = new OutputTail(5);
        void Keep(string? line) { if (!string.IsNullOrWhiteSpace(line)) lastWords.Add(line.Trim()); }
        process.OutputDataReceived += (_, e) => Keep(e.Data);
        process.ErrorDataReceived += (_, e) => Keep(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var azurite = new Azurite(process, host, oauth, blob, queue, table);
        await azurite.WaitForPortsAsync(lastWords);
        return azurite;
    }

    private async Task WaitForPortsAsync(OutputTail lastWords)
    {
        var deadline = Stopwatch.StartNew();
        foreach (var port in new[] { BlobPort, QueuePort, TablePort })
        {
            while (true)
            {
                if (_process.HasExited)
                {
                    await _process.WaitForExitAsync(); // its output is read to the end
                    throw new InvalidOperationException($"Azurite exited with code {_process.ExitCode} before listening on ports {BlobPort}, {QueuePort}, {TablePort}: {(lastWords.Lines.Count == 0 ? "(it wrote nothing)" : string.Join(" | ", lastWords.Lines))}");
                }
                try
                {
                    using var client = new TcpClient();
                    await client.ConnectAsync(IPAddress.Parse(_host.Address), port);
                    break;
                }
                catch (SocketException) when (deadline.Elapsed < TimeSpan.FromSeconds(60))
                {
                    await Task.Delay(100);
                }
            }
        }
    }

    /// <summary>Stops Azurite (simulating a storage outage); <see cref="DisposeAsync"/> is then a no-op.</summary>
    public Task StopAsync() => ProcessEnding.KillAsync(_process);

    /// <summary>
    /// SIGTERM: Azurite closes its servers and saves its metadata, then exits (SIGKILL after <paramref name="grace"/>).
    /// SIGKILL alone loses what it acknowledged in the last seconds: it saves its metadata every 5 s.
    /// </summary>
    public Task TerminateAsync(TimeSpan grace) => ProcessEnding.TerminateAsync(_process, grace);

    /// <summary>After <see cref="StopAsync"/>: a new Azurite on the same ports and host (an outage ending; in-memory data is gone, data on disk is kept).</summary>
    public Task<Azurite> RestartAsync(string repoRoot) => StartAsync(repoRoot, (BlobPort, QueuePort, TablePort), _host, _oauth);

    public async ValueTask DisposeAsync()
    {
        _exitGuard.Dispose();
        await StopAsync();
        _process.Dispose();
    }

    /// <summary>
    /// A TCP port free on 127.0.0.1 now, for a process about to listen on it. Chosen below the kernel's ephemeral
    /// range: a port from that range (what binding port 0 gives) can become the source port of any outgoing
    /// connection on the machine before the process binds it, and the silos' and agents' own connections are many.
    /// </summary>
    public static int FreePort()
    {
        var (low, high) = ListenPorts;
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(low, high);
            // Never the same port twice from this process: the first may not be bound yet.
            if (CanListen(port) && HandedOut.TryAdd(port, 0)) return port;
        }
        throw new InvalidOperationException($"no free TCP port on 127.0.0.1 between {low} and {high - 1}");
    }

    private static readonly System.Collections.Concurrent.ConcurrentDictionary<int, byte> HandedOut = new();
    private static readonly (int Low, int High) ListenPorts = ListenPortRange();

    /// <summary>Ports below the ephemeral range (12,000 of them, from 1024 up), or 20000–32767 where that range cannot be read.</summary>
    private static (int Low, int High) ListenPortRange()
    {
        const int Width = 12000;
        try
        {
            var ephemeralLow = int.Parse(File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[0], System.Globalization.CultureInfo.InvariantCulture);
            if (ephemeralLow > 1024 + 1000) return (Math.Max(1024, ephemeralLow - Width), ephemeralLow);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException) { }
        return (20000, 32768);
    }

    private static bool CanListen(int port)
    {
        try
        {
            var listener = new TcpListener(IPAddress.Loopback, port);
            listener.Start();
            listener.Stop();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
