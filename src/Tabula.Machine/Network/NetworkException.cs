namespace Tabula.Machine.Network;

/// <summary>Why the machine could not be put on the network.</summary>
public enum NetworkError
{
    /// <summary>No NIC with a MAC address appeared, or none of the candidates reported carrier.</summary>
    NoInterface,
    /// <summary>No DHCP lease within <see cref="MachineLimits.DhcpTimeout"/>, or the DHCP socket failed.</summary>
    DhcpFailed,
    /// <summary>The kernel refused a link, address or route (the inner <see cref="Linux.LinuxException"/> says which).</summary>
    SetupFailed,
    /// <summary>The host configuration cannot be applied (a static mode without an address).</summary>
    BadConfiguration,
}

/// <summary>Bringing the machine onto the network failed; the caller reports it and tries again later.</summary>
public sealed class NetworkException : Exception
{
    internal NetworkException(NetworkError error, string detail, Exception? inner = null) : base(detail, inner) => Error = error;

    /// <summary>What failed.</summary>
    public NetworkError Error { get; }
}
