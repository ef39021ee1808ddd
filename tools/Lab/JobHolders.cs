using System.Text.Json.Nodes;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Processes;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Lab;

/// <summary>
/// The memory-tier holders of a lab job, one <c>ckpt holder</c> process per simulated host, each started with the job's
/// tenant token. A host that is lost takes its holder with it (SIGKILL); its replacement starts empty.
/// </summary>
internal sealed class JobHolders(string repo, string token) : IAsyncDisposable
{
    private readonly Dictionary<int, (ChildProcess Process, HolderRef Holder)> _byRank = [];
    private readonly List<ChildProcess> _all = [];

    /// <summary>The holder on each rank's host now, by rank.</summary>
    public IReadOnlyList<HolderRef> Current => _byRank.OrderBy(h => h.Key).Select(h => h.Value.Holder).ToList();

    /// <summary>Starts a holder on host <paramref name="host"/> for rank <paramref name="rank"/> and waits until it listens.</summary>
    public async Task StartAsync(int rank, string host)
    {
        var process = ChildProcess.Start("dotnet", [RepositoryBuilds.Sibling(repo, "Cli", "ckpt.dll"), "holder", "--listen", "127.0.0.1:0", "--host", host],
            new Dictionary<string, string> { [ClusterOptions.TokenVariable] = token });
        _all.Add(process);
        var listening = await process.Events.ReadAsync().AsTask().WaitAsync(TimeSpan.FromSeconds(60))
            ?? throw new InvalidOperationException($"holder on {host} did not start: {process.ErrorTail}");
        _byRank[rank] = (process, new HolderRef((string)listening["endpoint"]!, (string)listening["host"]!));
    }

    /// <summary>SIGKILLs rank <paramref name="rank"/>'s holder: its host is lost, and every snapshot it kept.</summary>
    public Task KillAsync(int rank) => _byRank[rank].Process.KillAsync();

    /// <summary>What each live holder keeps now: bytes, complete snapshots, and its process's resident memory.</summary>
    public async Task<JsonArray> StatsAsync()
    {
        using var http = HolderClient.CreateHttp();
        var client = new HolderClient(http, token);
        var stats = new JsonArray();
        foreach (var (rank, (process, holder)) in _byRank.OrderBy(h => h.Key))
        {
            var held = await client.StatsAsync(holder, CancellationToken.None);
            stats.Add(new JsonObject
            {
                ["rank"] = rank, ["host"] = holder.Host, ["bytes_held"] = held.BytesHeld, ["complete_snapshots"] = held.CompleteSnapshots,
                ["incomplete_snapshots"] = held.IncompleteSnapshots, ["rss_bytes"] = ResidentBytes(process.Id),
            });
        }
        return stats;
    }

    /// <summary>A process's resident set (VmRSS), in bytes; null when it cannot be read.</summary>
    public static long? ResidentBytes(int pid)
    {
        try
        {
            var line = File.ReadLines($"/proc/{pid}/status").FirstOrDefault(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return line is null ? null : long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture) * 1024;
        }
        catch (IOException) { return null; }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var process in _all) await process.DisposeAsync();
    }
}
