using Tabula.Packaging;

namespace Tabula.Boot.Seams;

/// <summary>The outcome of bringing the machine onto the network: a summary for the console, or a failure.</summary>
internal sealed record NetworkResult(string Summary, BootFailure? Failure = null);

/// <summary>Configures the network as the host configuration says (static or DHCP, interface by MAC or first with link).</summary>
internal interface INetwork
{
    NetworkResult Configure(HostConfig host);
}

/// <summary>For host tests: the network is already there.</summary>
internal sealed class PresentNetwork : INetwork
{
    public int Calls { get; private set; }

    public NetworkResult Configure(HostConfig host)
    {
        Calls++;
        return new NetworkResult($"present ({host.NetworkMode})");
    }
}
