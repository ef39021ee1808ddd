using System.Text.Json.Nodes;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Processes;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// The memory-tier holders of a chaos session (docs/memory-tier.md): one <c>ckpt holder</c> per rank index on the agents'
/// host, each on a fixed port so that one restarted after a kill (empty) is found where its ranks look for it. Each stands
/// for the holder of one training host, shared by every run's rank of that index.
/// </summary>
internal sealed class ChaosHolders(LabHost host, string repo, string token, Action<string> say) : IAsyncDisposable
{
    private const int FirstPort = 7400;
    private readonly Lock _lock = new();
    private readonly Dictionary<int, ChildProcess> _processes = [];
    private readonly Dictionary<int, long> _firstRss = [];
    private readonly Dictionary<int, long> _maxRss = [];

    /// <summary>The holder rank <paramref name="rank"/>'s agents use.</summary>
    public static HolderRef Of(int rank) => new($"http://127.0.0.1:{FirstPort + rank}", $"agents-host-{rank}");

    public async Task StartAsync(int rank)
    {
        var holder = Of(rank);
        var process = ChildProcess.Start(host.Launcher[0], [.. host.Launcher.Skip(1), "dotnet", RepositoryBuilds.Sibling(repo, "Cli", "ckpt.dll"), "holder",
            "--listen", $"0.0.0.0:{FirstPort + rank}", "--host", holder.Host, "--max-mib", "1024"], new Dictionary<string, string> { [ClusterOptions.TokenVariable] = token });
        lock (_lock) _processes[rank] = process;
        if (await process.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60)) is not { } listening || (string?)listening["event"] != "listening")
            throw new InvalidOperationException($"holder {rank} did not start: {process.ErrorTail}");
    }

    /// <summary>SIGKILLs holder <paramref name="rank"/> (its host is lost, mid-transfer or not) and starts an empty one in its place after <paramref name="down"/>.</summary>
    public async Task KillAndReplaceAsync(int rank, TimeSpan down)
    {
        say($"fault: SIGKILL the memory-tier holder of rank {rank}'s host; an empty one replaces it in {down.TotalSeconds:0} s");
        ChildProcess lost;
        lock (_lock) _processes.Remove(rank, out lost!);
        await lost.KillAsync();
        await lost.DisposeAsync();
        await Task.Delay(down);
        await StartAsync(rank);
    }

    /// <summary>Samples each holder's resident memory (VmRSS); the first sample and the highest are kept.</summary>
    public void SampleMemory()
    {
        List<KeyValuePair<int, ChildProcess>> live;
        lock (_lock) live = [.. _processes];
        foreach (var (rank, process) in live)
        {
            if (process.HasExited || JobHolders.ResidentBytes(process.Id) is not { } rss) continue;
            _firstRss.TryAdd(rank, rss);
            _maxRss[rank] = Math.Max(_maxRss.GetValueOrDefault(rank), rss);
        }
    }

    /// <summary>What each holder keeps at the end, and its resident memory: first sample, highest, now.</summary>
    public async Task<JsonArray> StatsAsync()
    {
        using var http = HolderClient.CreateHttp();
        var client = new HolderClient(http, token);
        var stats = new JsonArray();
        List<KeyValuePair<int, ChildProcess>> live;
        lock (_lock) live = [.. _processes.OrderBy(p => p.Key)];
        foreach (var (rank, process) in live)
        {
            HolderStats? held = null;
            // From this host, through the agents' host's address (the agents use its loopback).
            try { held = await client.StatsAsync(new HolderRef($"http://{host.Address}:{FirstPort + rank}", Of(rank).Host), CancellationToken.None); }
            catch (HolderException e) { say($"holder {rank}: {e.Message}"); }
            stats.Add(new JsonObject
            {
                ["rank"] = rank, ["bytes_held"] = held?.BytesHeld, ["complete_snapshots"] = held?.CompleteSnapshots, ["incomplete_snapshots"] = held?.IncompleteSnapshots,
                ["rss_first_mib"] = Mib(_firstRss.GetValueOrDefault(rank)), ["rss_max_mib"] = Mib(_maxRss.GetValueOrDefault(rank)),
                ["rss_now_mib"] = JobHolders.ResidentBytes(process.Id) is { } now ? Mib(now) : null,
            });
        }
        return stats;
    }

    private static double Mib(long bytes) => Math.Round(bytes / 1048576.0, 1);

    public async ValueTask DisposeAsync()
    {
        List<ChildProcess> live;
        lock (_lock) live = [.. _processes.Values];
        foreach (var process in live) await process.DisposeAsync();
    }
}
