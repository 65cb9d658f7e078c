using Tabula.Fleet.Protocol;
using Tabula.Relay.Fleet;
using Tabula.Relay.Network;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;
using Tabula.WireGuard.Uapi;

namespace Tabula.Relay.Serving;

/// <summary>
/// A userspace WireGuard (wireguard-go) interface driven over its UAPI socket: for hosts whose kernel has no
/// WireGuard module, as wg-quick falls back. The daemon creates the interface; key, port and peers go over UAPI;
/// <paramref name="configureLink"/> assigns the gateway addresses and sets the link up (by default with rtnetlink in
/// this process's network namespace).
/// </summary>
public sealed class UapiRelayDevice(string name, Action<RelayConfigView>? configureLink = null,
    string socketDirectory = UapiWireGuardControl.DefaultSocketDirectory) : IRelayDevice
{
    public string Name => name;
    public IWireGuardControl Control { get; } = new UapiWireGuardControl(name, socketDirectory);

    public async Task UpAsync(WireGuardKey privateKey, RelayConfigView config, CancellationToken ct)
    {
        await Control.ApplyAsync(new DeviceUpdate { PrivateKey = privateKey, ListenPort = checked((ushort)config.ListenPort) }, ct);
        (configureLink ?? ConfigureHere)(config);
    }

    void ConfigureHere(RelayConfigView config)
    {
        RelayNetwork.AddGatewayAddresses(name, config);
        RelayLink.SetUp(name);
    }
}
