using System.Net.Sockets;

namespace Checkpointing.Processes;

/// <summary>
/// Where an Azurite runs: the address it listens on, the folder it keeps its data in (null: in memory,
/// lost when it stops), and a launcher its node process starts through (e.g. <c>ip netns exec NS</c>).
/// </summary>
public sealed record AzuriteHost(string Address, string? Location = null, IReadOnlyList<string>? LauncherArgs = null)
{
    public static readonly AzuriteHost Loopback = new("127.0.0.1");

    public IReadOnlyList<string> Launcher => LauncherArgs ?? [];
}
