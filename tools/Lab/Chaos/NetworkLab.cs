using System.Diagnostics;
using System.Security.Cryptography;
using Checkpointing.Cli;

namespace Checkpointing.Lab.Chaos;

/// <summary>
/// Several "hosts" on this machine (chaos, issue 14): one network namespace each, joined by a bridge in
/// a private 10.213.x.0/24 network whose addresses the lab assigns itself. Needs root and iproute2. Its
/// names carry a random id, so it never touches another lab or anything it did not create; disposing
/// it deletes the namespaces (their processes must be ended first) and the bridge.
/// </summary>
public sealed class NetworkLab : IAsyncDisposable
{
    private readonly List<LabHost> _hosts = [];
    private readonly string _bridge;
    private readonly string _subnet;
    private readonly Action<string> _log;

    private NetworkLab(string id, int subnet, Action<string> log)
    {
        Id = id;
        _bridge = $"ckc{id}br";
        _subnet = $"10.213.{subnet}";
        _log = log;
    }

    public string Id { get; }

    /// <summary>The address of this process on the lab network (the bridge's): the operator's seat.</summary>
    public string OperatorAddress => $"{_subnet}.1";

    public IReadOnlyList<LabHost> Hosts => _hosts;

    public LabHost this[string name] => _hosts.Single(h => h.Name == name);

    public static async Task<NetworkLab> CreateAsync(IReadOnlyList<string> hostNames, Action<string> log)
    {
        if (!OperatingSystem.IsLinux() || !Environment.IsPrivilegedProcess)
            throw new InvalidOperationException("the chaos lab needs root on Linux: it creates network namespaces, a bridge and veth links (run scripts/chaos.sh as root)");
        var id = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(2));
        var lab = new NetworkLab(id, RandomNumberGenerator.GetInt32(1, 255), log);
        try
        {
            await Ip("link", "add", lab._bridge, "type", "bridge");
            await Ip("addr", "add", $"{lab.OperatorAddress}/24", "dev", lab._bridge);
            await Ip("link", "set", lab._bridge, "up");
            for (var i = 0; i < hostNames.Count; i++)
            {
                var host = new LabHost(hostNames[i], $"ckc{id}-{hostNames[i]}", $"{lab._subnet}.{i + 10}", $"ckc{id}h{i}");
                await Ip("netns", "add", host.Namespace);
                lab._hosts.Add(host); // from here on, disposing removes it
                await Ip("link", "add", host.Veth, "type", "veth", "peer", "name", $"ckc{id}n{i}", "netns", host.Namespace);
                await Ip("link", "set", host.Veth, "master", lab._bridge, "up");
                await Ip("-n", host.Namespace, "link", "set", $"ckc{id}n{i}", "name", "eth0");
                await Ip("-n", host.Namespace, "addr", "add", $"{host.Address}/24", "dev", "eth0");
                await Ip("-n", host.Namespace, "link", "set", "eth0", "up");
                await Ip("-n", host.Namespace, "link", "set", "lo", "up");
            }
            log($"lab {id}: bridge {lab._bridge} {lab.OperatorAddress}/24, hosts {string.Join(", ", lab._hosts.Select(h => $"{h.Name} {h.Address}"))}");
            return lab;
        }
        catch
        {
            await lab.DisposeAsync();
            throw;
        }
    }

    /// <summary>Cuts the host off the network (its link goes down): it reaches nobody and nobody reaches it.</summary>
    public Task PartitionAsync(LabHost host) => Ip("link", "set", host.Veth, "down");

    public Task HealPartitionAsync(LabHost host) => Ip("link", "set", host.Veth, "up");

    /// <summary>
    /// A slow, lossy link both ways: a token bucket at <paramref name="kbit"/> whose queue holds at most
    /// 100 ms, so packets wait (delay) and what does not fit is dropped (loss). Stands in for tc netem,
    /// which this kernel lacks (sch_netem is not built).
    /// </summary>
    public async Task DegradeAsync(LabHost host, int kbit)
    {
        string[] tbf = ["root", "tbf", "rate", $"{kbit}kbit", "burst", "16kb", "latency", "100ms"];
        await Run("tc", ["qdisc", "replace", "dev", host.Veth, .. tbf]);
        await Run("ip", ["netns", "exec", host.Namespace, "tc", "qdisc", "replace", "dev", "eth0", .. tbf]);
    }

    public async Task RestoreLinkAsync(LabHost host)
    {
        await Run("tc", ["qdisc", "del", "dev", host.Veth, "root"], ignoreFailure: true);
        await Run("ip", ["netns", "exec", host.Namespace, "tc", "qdisc", "del", "dev", "eth0", "root"], ignoreFailure: true);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var host in _hosts) await Run("ip", ["netns", "del", host.Namespace], ignoreFailure: true); // its veth pair goes with it
        await Run("ip", ["link", "del", _bridge], ignoreFailure: true);
        _log($"lab {Id}: removed");
    }

    private static Task Ip(params string[] args) => Run("ip", args);

    private static async Task Run(string command, IReadOnlyList<string> args, bool ignoreFailure = false)
    {
        var info = new ProcessStartInfo(command) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {command}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{command} is not installed ({e.Message}): scripts/bootstrap.sh installs iproute2", e);
        }
        using (process)
        {
            var error = process.StandardError.ReadToEndAsync();
            await process.StandardOutput.ReadToEndAsync();
            await process.WaitForExitAsync();
            if (process.ExitCode != 0 && !ignoreFailure)
                throw new InvalidOperationException($"{command} {string.Join(' ', args)} failed ({process.ExitCode}): {CliFailure.OneLine(await error)}");
        }
    }
}
