using Tabula.WireGuard.Keys;

namespace Tabula.WireGuard;

/// <summary>
/// A change to a WireGuard device: device settings, then peers in order. Unset members leave the current value
/// alone. <see cref="Peers"/> is enumerated exactly once, lazily, while the update is sent, so a generator can stream
/// a million peers in bounded memory. Keys are borrowed, not owned.
/// </summary>
public sealed record DeviceUpdate
{
    /// <summary>New private key; <see cref="WireGuardKey.Zero"/> removes it (the device stops handshaking).</summary>
    public WireGuardKey? PrivateKey { get; init; }

    /// <summary>UDP listen port; 0 picks a random one.</summary>
    public ushort? ListenPort { get; init; }

    /// <summary>Firewall mark on outgoing packets; 0 clears it.</summary>
    public uint? FirewallMark { get; init; }

    /// <summary>Remove every peer before applying <see cref="Peers"/>: the update becomes the full peer set.</summary>
    public bool ReplacePeers { get; init; }

    /// <summary>Peer changes, applied in order.</summary>
    public IEnumerable<PeerUpdate> Peers { get; init; } = [];
}
