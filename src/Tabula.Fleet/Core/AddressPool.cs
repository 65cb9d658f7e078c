using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Tabula.Fleet.Core;

/// <summary>
/// Tunnel addresses for customer devices: slot n is host n+2 of the IPv4 and IPv6 pools (.0 is the network, .1 the
/// relays' gateway). New slots are taken in order; a removed device's slot is reused only once every relay has
/// applied the removal and the operator's quarantine has passed (<see cref="CustomerService"/>), so a removed key's
/// address cannot reach a new device while a relay still holds the old peer. A /10 holds ~4M devices.
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

    /// <summary>The slot of a device's address pair, or null when the pair is not slot n of both pools (the pools changed).</summary>
    public long? Slot(string ipv4, string ipv6)
    {
        if (!IPAddress.TryParse(ipv4, out var v4) || !IPAddress.TryParse(ipv6, out var v6) || !Contains(v4)
            || v4.AddressFamily != AddressFamily.InterNetwork)
            return null;
        BigInteger host = new BigInteger(v4.GetAddressBytes(), isUnsigned: true, isBigEndian: true)
                          - new BigInteger(v4Network.GetAddressBytes(), isUnsigned: true, isBigEndian: true);
        if (host < 2) return null;
        long slot = (long)(host - 2);
        try
        {
            var (a4, a6) = Allocate(slot);
            return IPAddress.Parse(a4).Equals(v4) && IPAddress.Parse(a6).Equals(v6) ? slot : null;
        }
        catch (FleetException) { return null; }
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
