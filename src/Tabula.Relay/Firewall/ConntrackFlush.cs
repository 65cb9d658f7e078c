using System.Net;
using Tabula.Linux.Netlink.Netfilter;
using Tabula.Relay.Sync;

namespace Tabula.Relay.Firewall;

/// <summary>
/// The real <see cref="IConnectionFlush"/>: ctnetlink in the calling thread's network namespace, one socket per removed
/// device (removals are rare; a socket held open would need a lock, as <see cref="ConntrackSocket"/> is not thread-safe).
/// </summary>
public sealed class ConntrackFlush : IConnectionFlush
{
    public int Flush(IPAddress ipv4, IPAddress ipv6)
    {
        using var conntrack = ConntrackSocket.Open();
        return conntrack.DeleteByAddresses([ipv4, ipv6]);
    }
}
