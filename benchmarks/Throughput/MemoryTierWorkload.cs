using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using Checkpointing.Abstractions;
using Checkpointing.Cli;
using Checkpointing.Contracts;
using Checkpointing.Core;
using Checkpointing.Formats;
using Checkpointing.Storage;
using Checkpointing.TrainerAgent;

namespace Checkpointing.Benchmarks.Throughput;

/// <summary>
/// The memory tier's rows of <c>ckpt-bench io</c> (docs/memory-tier.md), on a real silo (grain state in memory), a real
/// holder over loopback HTTP and the workload's model: a memory checkpoint's training stall against a memcpy of the same
/// bytes, and the transfer of a snapshot to a holder against a plain loopback TCP copy of the same bytes into pre-touched memory.
/// </summary>
internal sealed class MemoryTierWorkload : IAsyncDisposable
{
    private readonly SiloFleet _silo;
    private readonly ClusterConnection _connection;
    private readonly HolderServer _holder;
    private readonly RunAgent _agent;
    private readonly HttpClient _http = HolderClient.CreateHttp();
    private readonly HolderClient _client;
    private readonly List<(string Name, ReadOnlyMemory<byte> Bytes)> _snapshot;
    private readonly byte[] _received;
    private long _iteration;
    private long _transfers;

    private MemoryTierWorkload(SiloFleet silo, ClusterConnection connection, HolderServer holder, RunAgent agent, string token, List<(string, ReadOnlyMemory<byte>)> snapshot)
    {
        (_silo, _connection, _holder, _agent, _snapshot) = (silo, connection, holder, agent, snapshot);
        _client = new HolderClient(_http, token);
        _received = GC.AllocateUninitializedArray<byte>((int)Math.Min(Array.MaxLength, SnapshotBytes));
        Array.Fill(_received, (byte)1); // touched before any timing
    }

    /// <summary>Bytes of one rank's snapshot as it travels (the native format: manifest and shards).</summary>
    public long SnapshotBytes => _snapshot.Sum(o => (long)o.Bytes.Length);

    public static async Task<MemoryTierWorkload> StartAsync(string siloDll, IoWorkload workload, Action<string> say)
    {
        var key = RandomNumberGenerator.GetBytes(32);
        say("memory tier: starting a silo (grain state in memory) and a holder on loopback");
        var silo = await SiloFleet.StartAsync(siloDll, 1, new Dictionary<string, string>
        {
            ["CKPT_Storage__GrainState"] = "Memory", ["CKPT_Storage__Checkpoints"] = "Memory", ["CKPT_Tenancy__SigningKey"] = Convert.ToBase64String(key),
        });
        var token = TenantTokens.Issue(key, "bench", DateTimeOffset.UtcNow.AddHours(6));
        var connection = await ClusterOptions.ConnectAsync(new ClusterConnectionOptions { Gateways = silo.Gateways, TenantToken = token });
        var run = new RunId("bench", "memory");
        var grain = connection.Client.GetGrain<ITrainingRunGrain>(run.Key);
        // A memory checkpoint at every step; no durable one.
        await grain.Create(new PeriodicPolicy(int.MaxValue, MemoryPeriod: 1));
        var epoch = await grain.StartAttempt();
        var holder = await HolderServer.StartAsync(new HolderOptions { TenantToken = token, Host = "bench", MaxBytes = 8 * workload.StateBytes + (1L << 30) });
        var agent = await RunAgent.JoinAsync(connection.Client, run, new MemoryStore(), 0, 1, epoch, workload.Model, [], memoryTier: new MemoryTierOptions(holder.Ref, token));

        // The snapshot as the memory tier sends it, serialized once here for the transfer rows.
        var staging = new MemoryStore();
        await NativeCheckpointWriter.WriteAsync(staging, "snapshot", new CheckpointIdentity(run.Key, "memory_0000000", 0), new Dictionary<string, object?> { ["model"] = workload.Model.state_dict().ToDictionary(p => p.Key, p => (object?)p.Value) },
            TorchTensors.AsSource, workload.WriteOptions);
        var objects = new List<(string, ReadOnlyMemory<byte>)>();
        await foreach (var entry in staging.ListAsync("snapshot/")) objects.Add((entry.Key["snapshot/".Length..], staging.Bytes(entry.Key)));
        return new MemoryTierWorkload(silo, connection, holder, agent, token, objects);
    }

    /// <summary>A memory checkpoint's stall: the step that takes it, until training may go on; its background write (serialize, put, commit) then finishes outside the timing.</summary>
    public async Task<double> StallAsync()
    {
        var iteration = _iteration++;
        var stall = await InterleavedPairs.Time(() => _agent.StepAsync(iteration));
        await _agent.WaitForMemoryCheckpointAsync();
        if (_agent.MemoryTier!.Commits != _iteration) throw new InvalidOperationException($"memory checkpoint {iteration} did not commit ({_agent.MemoryTier.Drops} dropped)");
        return stall;
    }

    /// <summary>The first memory checkpoint allocates the snapshot arena: taken before the timed ones.</summary>
    public Task WarmAsync() => StallAsync();

    /// <summary>One snapshot put and completed on the holder over loopback HTTP, checksummed; freed afterwards, outside the timing.</summary>
    public async Task<double> TransferAsync()
    {
        var key = new SnapshotKey(new RunId("bench", "transfer"), 0, 1, _transfers++);
        var seconds = await InterleavedPairs.Time(() => _client.PutAsync([_holder.Ref], key, _snapshot, null, CancellationToken.None));
        await _client.DeleteAsync(_holder.Ref, key, CancellationToken.None);
        return seconds;
    }

    /// <summary>The same bytes over a plain loopback TCP connection into pre-touched memory: what the machine's loopback can carry.</summary>
    public async Task<double> LoopbackCopyAsync()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        using var sender = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var accepting = listener.AcceptSocketAsync();
        await sender.ConnectAsync((IPEndPoint)listener.LocalEndpoint);
        using var receiver = await accepting;
        return await InterleavedPairs.Time(async () =>
        {
            var receiving = ReceiveAsync(receiver, SnapshotBytes);
            foreach (var (_, bytes) in _snapshot) await sender.SendAsync(bytes, SocketFlags.None);
            await receiving;
        });
    }

    private async Task ReceiveAsync(Socket receiver, long total)
    {
        for (long received = 0; received < total;)
        {
            var at = (int)(received % _received.Length);
            var count = await receiver.ReceiveAsync(_received.AsMemory(at, (int)Math.Min(_received.Length - at, total - received)), SocketFlags.None);
            if (count == 0) throw new EndOfStreamException("the loopback sender closed early");
            received += count;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _agent.DisposeAsync();
        await _holder.DisposeAsync();
        _http.Dispose();
        await _connection.DisposeAsync();
        await _silo.DisposeAsync();
    }
}
