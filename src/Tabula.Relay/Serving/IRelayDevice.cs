using Tabula.Fleet.Protocol;
using Tabula.Relay.Fleet;
using Tabula.WireGuard;
using Tabula.WireGuard.Keys;

namespace Tabula.Relay.Serving;

/// <summary>The WireGuard interface the relay serves on: how it comes up, and the control that changes its peers.</summary>
public interface IRelayDevice
{
    string Name { get; }
    IWireGuardControl Control { get; }

    /// <summary>Brings the interface up with this boot's key and the controller's listen port and gateway addresses.</summary>
    Task UpAsync(WireGuardKey privateKey, RelayConfigView config, CancellationToken ct);

    /// <summary>The interface MTU read back from the kernel after <see cref="UpAsync"/>, when this device sets it (null: not known).</summary>
    uint? Mtu => null;
}
