using System.Net;
using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard;

/// <summary>
/// A device as read back from its implementation. Owns its keys: dispose it to zero the private key and the
/// preshared keys.
/// </summary>
public sealed class DeviceState : IDisposable
{
    /// <summary>The interface name.</summary>
    public required string InterfaceName { get; init; }

    /// <summary>The private key, or null when none is set.</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>The public key (reported by the kernel, derived from the private key for UAPI), or null.</summary>
    public WireGuardKey? PublicKey { get; init; }

    /// <summary>The UDP port, 0 when not listening.</summary>
    public ushort ListenPort { get; init; }

    /// <summary>Firewall mark, 0 when none.</summary>
    public uint FirewallMark { get; init; }

    /// <summary>Peers in the implementation's order.</summary>
    public required IReadOnlyList<PeerState> Peers { get; init; }

    /// <summary>Zeroes every key this state holds.</summary>
    public void Dispose()
    {
        PrivateKey?.Dispose();
        PublicKey?.Dispose();
        foreach (var peer in Peers)
            peer.Dispose();
    }
}

/// <summary>One peer as read back. Owns its keys.</summary>
public sealed class PeerState : IDisposable
{
    /// <summary>The peer's public key.</summary>
    public required WireGuardKey PublicKey { get; init; }

    /// <summary>The preshared key, or null when none (all zeros on the wire).</summary>
    public WireGuardKey? PresharedKey { get; init; }

    /// <summary>Current endpoint (configured or roamed to), or null.</summary>
    public IPEndPoint? Endpoint { get; init; }

    /// <summary>Last completed handshake, or null when none ever completed.</summary>
    public DateTimeOffset? LastHandshake { get; init; }

    /// <summary>Bytes received, on the wire (handshakes included).</summary>
    public ulong ReceiveBytes { get; init; }

    /// <summary>Bytes sent, on the wire (handshakes included).</summary>
    public ulong TransmitBytes { get; init; }

    /// <summary>Persistent keepalive in seconds, 0 when off.</summary>
    public ushort PersistentKeepaliveInterval { get; init; }

    /// <summary>Protocol version (1), or 0 when the implementation did not say.</summary>
    public int ProtocolVersion { get; init; }

    /// <summary>Allowed IPs in the implementation's order.</summary>
    public required IReadOnlyList<AllowedIp> AllowedIps { get; init; }

    /// <summary>Zeroes the keys.</summary>
    public void Dispose()
    {
        PublicKey.Dispose();
        PresharedKey?.Dispose();
    }
}
