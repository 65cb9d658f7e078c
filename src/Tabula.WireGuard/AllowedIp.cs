using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;

namespace Tabula.WireGuard;

/// <summary>
/// One entry of a peer's allowed IPs: an address and a prefix length (cryptokey routing). Host bits are kept as
/// given; both wireguard-go and the kernel mask them, so a read-back shows the network address.
/// </summary>
public readonly record struct AllowedIp
{
    /// <summary>An IPv4 or IPv6 prefix; <paramref name="cidr"/> at most 32 or 128.</summary>
    public AllowedIp(IPAddress address, int cidr)
    {
        ArgumentNullException.ThrowIfNull(address);
        int max = address.AddressFamily switch
        {
            AddressFamily.InterNetwork => 32,
            AddressFamily.InterNetworkV6 => 128,
            _ => throw new ArgumentException("allowed IPs are IPv4 or IPv6", nameof(address)),
        };
        if (cidr < 0 || cidr > max)
            throw new ArgumentOutOfRangeException(nameof(cidr), cidr, $"prefix length must be 0-{max}");
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0)
            throw new ArgumentException("allowed IPs carry no IPv6 scope", nameof(address));
        Address = address;
        Cidr = (byte)cidr;
    }

    /// <summary>The address (IPv4 or IPv6, never IPv4-mapped unless given so).</summary>
    public IPAddress Address { get; }

    /// <summary>Prefix length.</summary>
    public byte Cidr { get; }

    /// <summary>True for IPv6.</summary>
    public bool IsIPv6 => Address.AddressFamily == AddressFamily.InterNetworkV6;

    /// <summary>Parses "10.0.0.1/32" or "fd00::/64". A bare address means a host route (/32 or /128).</summary>
    public static bool TryParse(ReadOnlySpan<char> text, [NotNullWhen(true)] out AllowedIp? result)
    {
        result = null;
        int slash = text.IndexOf('/');
        ReadOnlySpan<char> addressText = slash < 0 ? text : text[..slash];
        if (addressText.Contains('%') || !IPAddress.TryParse(addressText, out var address))
            return false;
        int max = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        int cidr = max;
        if (slash >= 0)
        {
            ReadOnlySpan<char> cidrText = text[(slash + 1)..];
            if (cidrText.Length is 0 or > 3 || !cidrText.ContainsOnlyDigits() ||
                !int.TryParse(cidrText, out cidr) || cidr > max)
                return false;
        }
        result = new AllowedIp(address, cidr);
        return true;
    }

    /// <summary>Like <see cref="TryParse"/>, throwing <see cref="FormatException"/> (input from our own callers, not from a device).</summary>
    public static AllowedIp Parse(string text) =>
        TryParse(text, out var result) ? result.Value : throw new FormatException("not an address/prefix");

    /// <summary>"address/cidr".</summary>
    public override string ToString() => $"{Address}/{Cidr}";
}

internal static class SpanCharExtensions
{
    public static bool ContainsOnlyDigits(this ReadOnlySpan<char> text) => !text.ContainsAnyExceptInRange('0', '9');
}
