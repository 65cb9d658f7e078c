namespace Tabula.Relay.Dns;

/// <summary>Every bound the resolver's parser and transports keep, with its source.</summary>
public static class DnsLimits
{
    /// <summary>RFC 1035 §4.1.1: the fixed header.</summary>
    public const int HeaderBytes = 12;

    /// <summary>RFC 1035 §2.3.4: a label.</summary>
    public const int MaxLabelBytes = 63;

    /// <summary>RFC 1035 §2.3.4: a name in wire form, length octets and the root included.</summary>
    public const int MaxNameBytes = 255;

    /// <summary>A client's query: one question and an OPT record fit with room to spare. Larger ones are not read.</summary>
    public const int MaxQueryBytes = 1232;

    /// <summary>RFC 1035 §4.2.1: a UDP answer to a client without EDNS.</summary>
    public const int ClassicUdpBytes = 512;

    /// <summary>
    /// The largest UDP answer sent to a client, and the payload size advertised upstream: DNS flag day 2020's value,
    /// which avoids IP fragmentation on the tunnel (WireGuard MTU 1380–1420). Larger answers go over TCP.
    /// </summary>
    public const int MaxUdpPayload = 1232;

    /// <summary>RFC 1035 §4.2.2: a message over TCP (two-byte length prefix).</summary>
    public const int MaxMessageBytes = 65535;

    /// <summary>Records of all three sections of one response; 64 KiB holds at most ~5 400 of the smallest.</summary>
    public const int MaxRecords = 2048;

    /// <summary>Datagrams read from one upstream socket while waiting for the one with the right id.</summary>
    public const int MaxStrayDatagrams = 16;
}
