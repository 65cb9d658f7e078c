using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using Tabula.Fleet.Protocol;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;

namespace Tabula.Relay.Sync;

/// <summary>A public key as a value (hashable, 32 bytes inline), so sets of a million peers cost no object per key.</summary>
public readonly record struct PeerKey(UInt128 Low, UInt128 High)
{
    public static PeerKey From(ReadOnlySpan<byte> key) =>
        key.Length == WireGuardKey.Length
            ? new(MemoryMarshal.Read<UInt128>(key), MemoryMarshal.Read<UInt128>(key[16..]))
            : throw new ArgumentException("a WireGuard public key is 32 bytes", nameof(key));

    public WireGuardKey ToKey()
    {
        Span<byte> bytes = stackalloc byte[WireGuardKey.Length];
        MemoryMarshal.Write(bytes, Low);
        MemoryMarshal.Write(bytes[16..], High);
        return new WireGuardKey(bytes);
    }
}

/// <summary>
/// One peer of the controller's set as the agent holds it while it is not on the device (a snapshot being reconciled,
/// a peer waiting for room): key and tunnel addresses in 52 bytes, no objects.
/// </summary>
public readonly record struct SetPeer(PeerKey Key, uint Ipv4, UInt128 Ipv6)
{
    public static SetPeer From(PeerLine line) => new(PeerKey.From(line.PublicKey!.Bytes), V4(line.Ipv4!), V6(line.Ipv6!));

    public static uint V4(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[4];
        return address.AddressFamily == AddressFamily.InterNetwork && address.TryWriteBytes(bytes, out _)
            ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : throw new ArgumentException("not an IPv4 address", nameof(address));
    }

    public static UInt128 V6(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        return address.AddressFamily == AddressFamily.InterNetworkV6 && address.TryWriteBytes(bytes, out _)
            ? BinaryPrimitives.ReadUInt128BigEndian(bytes) : throw new ArgumentException("not an IPv6 address", nameof(address));
    }

    public IPAddress Ipv4Address
    {
        get
        {
            Span<byte> bytes = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(bytes, Ipv4);
            return new IPAddress(bytes);
        }
    }

    public IPAddress Ipv6Address
    {
        get
        {
            Span<byte> bytes = stackalloc byte[16];
            BinaryPrimitives.WriteUInt128BigEndian(bytes, Ipv6);
            return new IPAddress(bytes);
        }
    }

    /// <summary>The device's form: the key and the two host routes (the fleet sets nothing else on a peer).</summary>
    public PeerUpdate ToUpsert() => new()
    {
        PublicKey = Key.ToKey(),
        ReplaceAllowedIps = true,
        AllowedIps = [new AllowedIp(Ipv4Address, 32), new AllowedIp(Ipv6Address, 128)],
    };

    /// <summary>Whether a device peer's allowed IPs are exactly this peer's two host routes.</summary>
    public bool SameAddresses(IReadOnlyList<AllowedIp> allowed)
    {
        if (allowed.Count != 2) return false;
        bool v4 = false, v6 = false;
        foreach (var ip in allowed)
        {
            if (!ip.IsIPv6 && ip.Cidr == 32 && V4(ip.Address) == Ipv4) v4 = true;
            else if (ip.IsIPv6 && ip.Cidr == 128 && V6(ip.Address) == Ipv6) v6 = true;
        }
        return v4 && v6;
    }
}

/// <summary>
/// The relay's tunnel pools, from the gateway addresses the controller configured (<c>10.64.0.1/10</c>,
/// <c>fc00:bbbb:bbbb:bb01::1/64</c> by default): a peer is installed only when both its addresses lie inside them and
/// neither is a gateway. A peer outside would take routes the relay does not own (another network the relay reaches, or
/// the gateway itself), so customers' traffic for them would go into that peer's tunnel.
/// </summary>
public sealed record TunnelPools(uint Ipv4Network, int Ipv4Prefix, uint Ipv4Gateway, UInt128 Ipv6Network, int Ipv6Prefix, UInt128 Ipv6Gateway)
{
    /// <summary>The controller's default pools (docs/fleet.md), until the relay's config says otherwise.</summary>
    public static TunnelPools Default { get; } = FromGateways("10.64.0.1/10", "fc00:bbbb:bbbb:bb01::1/64");

    /// <summary>From <c>ADDRESS/PREFIX</c> gateways; a malformed one is the relay's <see cref="RelayFailure.BadConfig"/>.</summary>
    public static TunnelPools FromGateways(string ipv4Gateway, string ipv6Gateway)
    {
        var (v4, v4Prefix) = Parse(ipv4Gateway, AddressFamily.InterNetwork, 32);
        var (v6, v6Prefix) = Parse(ipv6Gateway, AddressFamily.InterNetworkV6, 128);
        uint g4 = SetPeer.V4(v4);
        UInt128 g6 = SetPeer.V6(v6);
        return new TunnelPools(g4 & Mask32(v4Prefix), v4Prefix, g4, g6 & Mask128(v6Prefix), v6Prefix, g6);
    }

    public bool Contains(in SetPeer peer) =>
        (peer.Ipv4 & Mask32(Ipv4Prefix)) == Ipv4Network && peer.Ipv4 != Ipv4Gateway && peer.Ipv4 != Ipv4Network
        && (peer.Ipv6 & Mask128(Ipv6Prefix)) == Ipv6Network && peer.Ipv6 != Ipv6Gateway && peer.Ipv6 != Ipv6Network;

    static uint Mask32(int prefix) => prefix == 0 ? 0 : uint.MaxValue << (32 - prefix);
    static UInt128 Mask128(int prefix) => prefix == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - prefix);

    static (IPAddress Address, int Prefix) Parse(string cidr, AddressFamily family, int bits)
    {
        int slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) || address.AddressFamily != family
            || !int.TryParse(cidr.AsSpan(slash + 1), out int prefix) || prefix is < 1 || prefix > bits)
            throw new RelayException("serve", RelayFailure.BadConfig, "the controller's gateway address is not ADDRESS/PREFIX of its family");
        return (address, prefix);
    }
}
