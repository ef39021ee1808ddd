using System.Net;
using System.Net.Sockets;

namespace Checkpointing.Silo;

/// <summary>
/// Refuses to start a silo whose silo or gateway port another process listens on. Orleans binds its listeners with
/// address reuse, which on Linux includes SO_REUSEPORT: a second silo on the same ports would bind too, become ready, and
/// share the connections with the first. A probe socket without any reuse option cannot bind a port that anyone listens on.
/// </summary>
/// <remarks>
/// Probe and listener are two binds, so two silos starting in the same instant may both pass; the probe catches the case
/// that happens in practice (a silo already running, a leftover process, a wrong port in a manifest).
/// </remarks>
public static class ListenPorts
{
    /// <exception cref="IOException">the port is in use, naming its role, address and port</exception>
    public static void EnsureFree(IPAddress address, int port, string role)
    {
        if (port == 0) return; // none (a silo without a gateway), or any free port
        using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            probe.Bind(new IPEndPoint(address, port));
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new IOException($"the {role} port {port} on {address} is already in use by another process (another silo?).", e);
        }
    }
}
