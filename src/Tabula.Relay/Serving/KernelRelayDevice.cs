using Tabula.Fleet.Protocol;
using Tabula.Relay.Fleet;
using Tabula.Relay.Network;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Kernel;

namespace Tabula.Relay.Serving;

/// <summary>
/// Kernel WireGuard on the relay, all through Tabula.Linux's netlink: the link created with rtnetlink
/// (kind "wireguard"), key, port and peers through the kernel's generic-netlink family, the pools' gateway addresses
/// (10.64.0.1/10, fc00:bbbb:bbbb:bb01::1/64 by default) on the interface, the link up, forwarding on.
/// </summary>
public sealed class KernelRelayDevice(string name, string root) : IRelayDevice
{
    public string Name => name;
    public IWireGuardControl Control { get; } = new KernelWireGuardControl(name);

    /// <summary>The link's MTU as rtnetlink reads it back after creating it with <see cref="RelayLink.WireGuardMtu"/>.</summary>
    public uint? Mtu { get; private set; }

    public async Task UpAsync(WireGuardKey privateKey, RelayConfigView config, CancellationToken ct)
    {
        Mtu = RelayLink.CreateWireGuard(name);
        await Control.ApplyAsync(new DeviceUpdate { PrivateKey = privateKey, ListenPort = checked((ushort)config.ListenPort) }, ct);
        RelayNetwork.AddGatewayAddresses(name, config);
        RelayLink.SetUp(name);
        RelayNetwork.EnableForwarding(root);
    }
}
