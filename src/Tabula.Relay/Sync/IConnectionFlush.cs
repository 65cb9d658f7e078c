using System.Net;

namespace Tabula.Relay.Sync;

/// <summary>
/// Cuts what a removed device still has going through the relay: its tracked (NATed) connections. On a relay it is
/// <see cref="Firewall.ConntrackFlush"/> in the agent's network namespace; tests run the same one inside theirs.
/// </summary>
public interface IConnectionFlush
{
    /// <summary>Deletes every tracked connection from or to the device's tunnel addresses; returns how many. May throw
    /// (the caller counts the failure and carries on).</summary>
    int Flush(IPAddress ipv4, IPAddress ipv6);
}
