namespace Tabula.WireGuard;

/// <summary>
/// Configuration access to one WireGuard interface, whatever implements it: the kernel module
/// (<see cref="Kernel.KernelWireGuardControl"/>, generic netlink) or a userspace daemon such as wireguard-go
/// (<see cref="Uapi.UapiWireGuardControl"/>, the cross-platform text protocol). The contract, like wireguard-go's
/// <c>tun.Device</c>, holds for both:
/// <list type="bullet">
/// <item><see cref="ApplyAsync"/> applies a <see cref="DeviceUpdate"/> as a delta: device fields first, then (after
/// removing every peer when <see cref="DeviceUpdate.ReplacePeers"/> is set) each peer in order. Peers are enumerated
/// once, lazily, and sent in batches, so memory stays bounded by one batch (<see cref="Limits.UapiWriteBufferBytes"/>
/// or <see cref="Limits.NetlinkSetMessageBytes"/>) however many peers stream through.</item>
/// <item>An update is <b>not atomic</b>. Both implementations apply what they have read as they go; when an update
/// fails part way (a refused peer, a full device, cancellation, a dead daemon) what came before stays applied. Make
/// updates idempotent (full sets with ReplacePeers, or upserts) and re-send after a failure.</item>
/// <item><see cref="GetAsync"/> reads the whole device into memory, bounded by <see cref="Limits.MaxPeers"/> and
/// <see cref="Limits.MaxAllowedIps"/>. The result owns copies of the keys; dispose it.</item>
/// <item>Failures are typed: <see cref="WireGuardUnavailableException"/> (no daemon, no kernel support, no such
/// interface), <see cref="WireGuardDeviceException"/> (the implementation refused with an errno),
/// <see cref="WireGuardProtocolException"/> (a malformed reply), <see cref="WireGuardSystemException"/> (a system
/// call failed). Invalid updates are <see cref="ArgumentException"/>s, raised when the offending peer is reached.</item>
/// <item>Instances hold no connection between calls (each call opens its own socket, as <c>wg</c> does), so
/// concurrent calls are allowed; their effects interleave in the implementation's order.</item>
/// <item>Cancellation is honoured between batches; a cancelled update is partially applied like a failed one.</item>
/// </list>
/// </summary>
public interface IWireGuardControl
{
    /// <summary>The interface this instance configures.</summary>
    string InterfaceName { get; }

    /// <summary>Applies <paramref name="update"/>; see the interface remarks for atomicity and batching.</summary>
    Task ApplyAsync(DeviceUpdate update, CancellationToken cancellationToken = default);

    /// <summary>Reads the device's configuration and per-peer statistics.</summary>
    Task<DeviceState> GetAsync(CancellationToken cancellationToken = default);
}
