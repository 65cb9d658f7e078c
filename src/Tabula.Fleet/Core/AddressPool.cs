using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Tabula.Fleet.Core;

/// <summary>
/// Tunnel addresses for customer devices: the n-th device ever added gets host n+2 of the IPv4 and IPv6
/// pools (.0 is the network, .1 the relays' gateway). Numbers are never reused, so a removed key's address
/// cannot reach a new device while a relay still holds the old peer. A /10 holds ~4M devices.
/// </summary>
public sealed class AddressPool
{
    private readonly IPAddress v4Network, v6Network;
    private readonly int v4Prefix, v6Prefix;

    public AddressPool(string ipv4Cidr, string ipv6Cidr)
    {
        (v4Network, v4Prefix) = ParseCidr(ipv4Cidr, AddressFamily.InterNetwork);
        (v6Network, v6Prefix) = ParseCidr(ipv6Cidr, AddressFamily.InterNetworkV6);
    }

    public static AddressPool Default => new("10.64.0.0/10", "fc00:bbbb:bbbb:bb01::/64");

    public string Ipv4Gateway => Offset(v4Network, 1).ToString();
    public string Ipv6Gateway => Offset(v6Network, 1).ToString();

    /// <summary>The gateway with the pool's prefix, as a relay assigns it to its WireGuard interface.</summary>
    public string Ipv4GatewayCidr => $"{Ipv4Gateway}/{v4Prefix}";
    public string Ipv6GatewayCidr => $"{Ipv6Gateway}/{v6Prefix}";

    /// <summary>Whether <paramref name="address"/> lies in either pool.</summary>
    public bool Contains(IPAddress address) =>
        new IPNetwork(v4Network, v4Prefix).Contains(address) || new IPNetwork(v6Network, v6Prefix).Contains(address);

    public (string Ipv4, string Ipv6) Allocate(long sequence)
    {
        BigInteger host = sequence + 2;
        if (host >= (BigInteger.One << (32 - v4Prefix)) - 1 || host >= (BigInteger.One << (128 - v6Prefix)) - 1)
            throw new FleetException(FleetError.PoolExhausted, "the tunnel address pool is exhausted");
        return (Offset(v4Network, host).ToString(), Offset(v6Network, host).ToString());
    }

    private static IPAddress Offset(IPAddress network, BigInteger offset)
    {
        byte[] bytes = network.GetAddressBytes();
        var value = new BigInteger(bytes, isUnsigned: true, isBigEndian: true) + offset;
        byte[] result = value.ToByteArray(isUnsigned: true, isBigEndian: true);
        var padded = new byte[bytes.Length];
        result.CopyTo(padded, padded.Length - result.Length);
        return new IPAddress(padded);
    }

    private static (IPAddress, int) ParseCidr(string cidr, AddressFamily family)
    {
        if (!IPNetwork.TryParse(cidr, out var network) || network.BaseAddress.AddressFamily != family)
            throw new ArgumentException($"\"{cidr}\" is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} CIDR");
        return (network.BaseAddress, network.PrefixLength);
    }
}
