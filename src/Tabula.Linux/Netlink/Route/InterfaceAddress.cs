using System.Net;

namespace Tabula.Linux.Netlink.Route;

/// <summary>An address assigned to an interface, as RTM_GETADDR describes it.</summary>
/// <param name="InterfaceIndex">ifa_index.</param>
/// <param name="Address">IFA_LOCAL for IPv4 (IFA_ADDRESS when absent), IFA_ADDRESS for IPv6.</param>
/// <param name="PrefixLength">ifa_prefixlen.</param>
public sealed record InterfaceAddress(int InterfaceIndex, IPAddress Address, int PrefixLength);
