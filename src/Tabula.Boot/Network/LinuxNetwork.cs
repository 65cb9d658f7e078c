using Tabula.Boot.Seams;
using Tabula.Machine.Network;
using Tabula.Packaging;

namespace Tabula.Boot.Network;

/// <summary>stboot's network stage on the machine layer (<see cref="MachineNetwork"/>): its failures as boot failures.</summary>
internal sealed class LinuxNetwork(string root, BootLog log) : INetwork
{
    readonly MachineNetwork network = new(root, log.Note);

    public NetworkResult Configure(HostConfig host)
    {
        try
        {
            return new NetworkResult(network.Configure(host).Summary);
        }
        catch (NetworkException e)
        {
            var reason = e.Error switch
            {
                NetworkError.NoInterface => FailureReason.NoInterface,
                NetworkError.DhcpFailed => FailureReason.DhcpFailed,
                _ => FailureReason.NetworkSetupFailed,
            };
            return new NetworkResult("", new BootFailure("network", reason, e.Message));
        }
    }
}
