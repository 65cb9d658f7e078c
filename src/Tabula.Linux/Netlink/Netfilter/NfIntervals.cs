using System.Net;
using System.Net.Sockets;
using System.Numerics;

namespace Tabula.Linux.Netlink.Netfilter;

/// <summary>
/// Turns prefix lists into the elements of an interval set: for each merged range, a start key and an end key
/// (the first address after the range) flagged NFT_SET_ELEM_INTERVAL_END, as nft sends them. Overlapping and
/// adjacent prefixes are merged first: the kernel refuses overlapping intervals.
/// </summary>
public static class NfIntervals
{
    /// <summary>The elements for <paramref name="prefixes"/>, all of <paramref name="family"/>.</summary>
    public static IReadOnlyList<NfSetElement> FromPrefixes(AddressFamily family, IEnumerable<IPNetwork> prefixes)
    {
        int bits = family == AddressFamily.InterNetwork ? 32 : family == AddressFamily.InterNetworkV6 ? 128
            : throw new ArgumentException($"address family {family} is not IPv4 or IPv6");
        var ranges = new List<(UInt128 First, UInt128 Last)>();
        foreach (IPNetwork prefix in prefixes)
        {
            if (prefix.BaseAddress.AddressFamily != family)
                throw new ArgumentException($"a {prefix.BaseAddress.AddressFamily} prefix in a {family} set");
            UInt128 first = ToNumber(prefix.BaseAddress);
            UInt128 size = prefix.PrefixLength == 0 ? UInt128.Zero : UInt128.One << (bits - prefix.PrefixLength);
            UInt128 last = prefix.PrefixLength == 0 ? Max(bits) : first + size - 1;
            ranges.Add((first, last));
        }
        ranges.Sort((a, b) => a.First.CompareTo(b.First));

        var merged = new List<(UInt128 First, UInt128 Last)>();
        foreach (var range in ranges)
        {
            if (merged.Count > 0 && (merged[^1].Last == Max(bits) || range.First <= merged[^1].Last + 1))
            {
                if (range.Last > merged[^1].Last)
                    merged[^1] = (merged[^1].First, range.Last);
                continue;
            }
            merged.Add(range);
        }

        var elements = new List<NfSetElement>(merged.Count * 2);
        foreach (var (first, last) in merged)
        {
            elements.Add(new NfSetElement(ToBytes(first, bits)));
            if (last != Max(bits))   // a range up to the top of the address space has no end element
                elements.Add(new NfSetElement(ToBytes(last + 1, bits), IntervalEnd: true));
        }
        return elements;
    }

    static UInt128 Max(int bits) => bits == 128 ? UInt128.MaxValue : (UInt128.One << bits) - 1;

    static UInt128 ToNumber(IPAddress address)
    {
        UInt128 value = 0;
        foreach (byte b in address.GetAddressBytes())
            value = value << 8 | b;
        return value;
    }

    static byte[] ToBytes(UInt128 value, int bits)
    {
        byte[] bytes = new byte[bits / 8];
        for (int i = bytes.Length - 1; i >= 0; i--, value >>= 8)
            bytes[i] = (byte)value;
        return bytes;
    }
}
