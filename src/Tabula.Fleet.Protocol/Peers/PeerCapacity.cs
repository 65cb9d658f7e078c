namespace Tabula.Fleet.Protocol;

/// <summary>
/// How many peers one relay device can hold, which bounds the fleet: every relay receives every device (issue 17,
/// "Peer-limit wipe loop"). The controller refuses devices past its fleet capacity, which must not exceed this; the
/// relay agent's own peer limit defaults to it.
/// </summary>
public static class PeerCapacity
{
    /// <summary>Kernel WireGuard's MAX_PEERS_PER_DEVICE = 2^20 (drivers/net/wireguard/peer.h; wg_peer_create refuses the next).</summary>
    public const int KernelMaxPeers = 1 << 20;

    /// <summary>The controller's default fleet capacity: below <see cref="KernelMaxPeers"/>, so a full fleet still fits every relay.</summary>
    public const int DefaultFleetCapacity = 1_000_000;
}
