using System.Diagnostics.CodeAnalysis;

namespace Tabula.Machine.Network;

/// <summary>Why a DHCP datagram was not accepted.</summary>
internal enum DhcpError
{
    /// <summary>Shorter than the fixed header plus the magic cookie.</summary>
    Truncated,
    /// <summary>Longer than <see cref="MachineLimits.MaxDhcpMessageBytes"/>.</summary>
    TooLarge,
    /// <summary>The magic cookie 63 82 53 63 is missing.</summary>
    BadMagicCookie,
    /// <summary>An option's length runs past the end of the message.</summary>
    OptionOverrun,
    /// <summary>An option has a length its type does not allow (e.g. a 3-byte subnet mask).</summary>
    BadOptionLength,
    /// <summary>No message type option (53).</summary>
    MissingMessageType,
    /// <summary>Not a BOOTREPLY for Ethernet (op 2, htype 1, hlen 6).</summary>
    NotAReply,
    /// <summary>A classless static route (option 121) is malformed.</summary>
    BadClasslessRoute,
}

/// <summary>A DHCP datagram that is not acceptable; the client drops it and keeps waiting.</summary>
internal sealed class DhcpException : Exception
{
    DhcpException(DhcpError error, string message) : base(message) => Error = error;

    public DhcpError Error { get; }

    [DoesNotReturn]
    public static void Throw(DhcpError error, string detail) => throw new DhcpException(error, $"DHCP {error}: {detail}");
}
