using System.Net;
using System.Net.Sockets;

namespace Checkpointing.Silo;

/// <summary>The address a silo advertises to others: an IP address as given, or a host name resolved once at start (its IPv4 address first).</summary>
public static class AdvertisedAddresses
{
    public static IPAddress Resolve(string address)
    {
        if (IPAddress.TryParse(address, out var ip)) return ip;
        IPAddress[] found;
        try { found = Dns.GetHostAddresses(address); }
        catch (SocketException e) { throw new InvalidSiloConfigurationException($"Silo:AdvertisedAddress '{address}' does not resolve: {e.Message}"); }
        return found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found.FirstOrDefault()
            ?? throw new InvalidSiloConfigurationException($"Silo:AdvertisedAddress '{address}' resolves to no address.");
    }
}
