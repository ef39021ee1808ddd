using Checkpointing.Processes;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// The storage host and the silo hosts of the lab: Azurite keeping its data on disk (a restart keeps
/// it), and silos in <c>Silo:Mode=Cluster</c> with Azure Table membership, each advertising its
/// namespace's address. Every process is started through <c>ip netns exec</c> and ended by PID.
/// </summary>
public sealed class ChaosCluster : IAsyncDisposable
{
    public const int SiloPort = 11111;
    public const int GatewayPort = 30000;
    public const int HttpPort = 8080;

    private readonly string _repo;
    private readonly string _siloDll;
    private readonly IReadOnlyDictionary<string, string> _settings;
    private readonly Action<string> _log;
    /// <summary>Where the silos keep grain state (their default <c>Storage:GrainStateContainer</c>).</summary>
    public const string GrainStateContainer = "grainstate";
    private readonly ChildProcess?[] _silos;

    private ChaosCluster(string repo, string siloDll, LabHost storage, IReadOnlyList<LabHost> siloHosts, IReadOnlyDictionary<string, string> settings, Action<string> log)
    {
        _repo = repo;
        _siloDll = siloDll;
        _settings = settings;
        _log = log;
        Storage = storage;
        SiloHosts = siloHosts;
        _silos = new ChildProcess?[siloHosts.Count];
    }

    public LabHost Storage { get; }
    public IReadOnlyList<LabHost> SiloHosts { get; }
    public Azurite Azurite { get; private set; } = null!;
    public string ConnectionString => Azurite.ConnectionString;
    public IReadOnlyList<string> Gateways => SiloHosts.Select(h => $"{h.Address}:{GatewayPort}").ToList();

    /// <summary>
    /// The membership settings chosen for the lab (docs: the chaos lab): a dead or cut-off silo is declared dead in seconds,
    /// and only by two votes. A vote is suppressed while a connection to the silo carried a message within
    /// MaxProbeTimeout × NumMissedProbesLimit (Orleans' liveness check; a cut link leaves its connection open), so that
    /// window (8 s here, 16 s with the default MaxProbeTimeout) is the shortest partition that gets a silo declared dead.
    /// A cut-off silo learns it was declared dead when it next reads the membership table (TableRefreshTimeout) and ends itself.
    /// </summary>
    public static readonly IReadOnlyDictionary<string, string> MembershipSettings = new Dictionary<string, string>
    {
        ["CKPT_Membership__ProbeTimeout"] = "00:00:02",
        ["CKPT_Membership__MaxProbeTimeout"] = "00:00:04",
        ["CKPT_Membership__NumMissedProbesLimit"] = "2",
        ["CKPT_Membership__NumProbedSilos"] = "2",
        ["CKPT_Membership__NumVotesForDeathDeclaration"] = "2",
        ["CKPT_Membership__TableRefreshTimeout"] = "00:00:05",
    };

    public static async Task<ChaosCluster> StartAsync(string repo, string siloDll, string dataFolder, LabHost storage, IReadOnlyList<LabHost> siloHosts,
        string clusterId, string signingKey, Action<string> log)
    {
        var settings = new Dictionary<string, string>(MembershipSettings)
        {
            ["CKPT_Silo__Mode"] = "Cluster",
            ["CKPT_Silo__ClusterId"] = clusterId,
            ["CKPT_Silo__SiloPort"] = $"{SiloPort}",
            ["CKPT_Silo__GatewayPort"] = $"{GatewayPort}",
            ["CKPT_Silo__HttpPort"] = $"{HttpPort}",
            ["CKPT_Storage__GrainState"] = "AzureBlob",
            ["CKPT_Storage__Checkpoints"] = "AzureBlob",
            ["CKPT_Tenancy__SigningKey"] = signingKey,
            // A checkpoint whose ranks died is swept within seconds, by the timer or, after its silo died, the reminder.
            ["CKPT_Runs__PendingTimeout"] = "00:00:20",
            ["CKPT_Runs__ReminderPeriod"] = "00:00:15",
            ["CKPT_Runs__CatalogTailLimit"] = "8", // a run that keeps its checkpoints moves older ones to its archive every few commits, under the faults
            ["CKPT_Reminders__MinimumReminderPeriod"] = "00:00:05",
        };
        var cluster = new ChaosCluster(repo, siloDll, storage, siloHosts, settings, log);
        try
        {
            cluster.Azurite = await Azurite.StartAsync(repo, host: new AzuriteHost(storage.Address, Path.Combine(dataFolder, "azurite"), storage.Launcher));
            log($"Azurite on {storage.Name} ({storage.Address}), data in {Path.Combine(dataFolder, "azurite")}");
            await Task.WhenAll(Enumerable.Range(0, siloHosts.Count).Select(cluster.StartSiloAsync));
            return cluster;
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    public ChildProcess? Silo(int index) => _silos[index];

    /// <summary>Starts silo <paramref name="index"/> on its host (again, after a kill) and waits until it is ready.</summary>
    public async Task StartSiloAsync(int index)
    {
        var host = SiloHosts[index];
        var env = new Dictionary<string, string>(_settings)
        {
            ["CKPT_Silo__AdvertisedAddress"] = host.Address,
            ["CKPT_Silo__HttpAddress"] = host.Address,
            ["CKPT_Storage__ConnectionString"] = ConnectionString,
        };
        var silo = ChildProcess.Start("ip", [.. host.Launcher.Skip(1), "dotnet", _siloDll], env);
        _silos[index] = silo;
        await silo.WaitReadyAsync(HttpPort, host.Address);
        _log($"silo {index} ready on {host.Name} ({host.Address}), pid {silo.Id}");
    }

    /// <summary>Starts every silo whose process ended (killed, or it left the cluster after being declared dead).</summary>
    public async Task<int> RestartExitedSilosAsync()
    {
        var restarted = 0;
        for (var i = 0; i < _silos.Length; i++)
        {
            if (_silos[i] is { HasExited: false }) continue;
            if (_silos[i] is { } dead) _log($"silo {i} exited ({dead.ExitCode}); starting it again");
            await StartSiloAsync(i);
            restarted++;
        }
        return restarted;
    }

    public async Task KillSiloAsync(int index)
    {
        if (_silos[index] is { } silo) await silo.KillAsync();
    }

    public async Task TerminateSiloAsync(int index)
    {
        if (_silos[index] is { } silo) await silo.StopAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>
    /// Storage goes down as a crashed host does for its clients: its link is cut first (requests in flight
    /// fail, new ones find nobody), then Azurite stops. It stops with SIGTERM, so that it keeps everything it
    /// acknowledged, as Azure Storage does; Azurite under SIGKILL loses up to 5 s of acknowledged writes
    /// (its metadata is saved every 5 s), which no client of a storage can survive (the checker found it).
    /// </summary>
    public async Task CrashStorageAsync(NetworkLab lab)
    {
        await lab.PartitionAsync(Storage);
        await Azurite.TerminateAsync(TimeSpan.FromSeconds(30));
    }

    /// <summary>The host comes back (its link up: connections are refused until Azurite listens), then Azurite starts on its data.</summary>
    public async Task RestartStorageAsync(NetworkLab lab)
    {
        await lab.HealPartitionAsync(Storage);
        Azurite = await Azurite.RestartAsync(_repo);
        _log($"Azurite restarted (pid {Azurite.ProcessId})");
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var silo in _silos) if (silo is not null) await silo.DisposeAsync();
        if (Azurite is not null) await Azurite.DisposeAsync();
    }
}
