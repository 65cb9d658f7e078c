using Tabula.Linux;
using Tabula.Relay.Fleet;
using Tabula.Relay.Network;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Kernel;

namespace Tabula.Relay.Serving;

/// <summary>
/// Kernel WireGuard on the relay: the link created with rtnetlink, key, port and peers through the kernel's
/// generic-netlink family, the pools' gateway addresses (10.64.0.1/10, fc00:bbbb:bbbb:bb01::1/64 by default) on
/// the interface, forwarding on.
/// </summary>
public sealed class KernelRelayDevice(string name, string root) : IRelayDevice
{
    public string Name => name;
    public IWireGuardControl Control { get; } = new KernelWireGuardControl(name);

    public async Task UpAsync(WireGuardKey privateKey, ConfigReply config, CancellationToken ct)
    {
        try
        {
            WireGuardLink.Create(name);
        }
        catch (WireGuardDeviceException e) when (e.ErrorName == "EEXIST") { }   // a re-enrollment after the first one
        await Control.ApplyAsync(new DeviceUpdate { PrivateKey = privateKey, ListenPort = checked((ushort)config.ListenPort) }, ct);
        RelayNetwork.AddGatewayAddresses(name, config);
        WireGuardLink.SetUp(name);
        RelayNetwork.EnableForwarding(root);
    }
}
