using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// The hash of a peer set, maintained incrementally: the XOR of SHA-256 over each peer's 66-byte record
/// <code>
/// offset  size  field
///      0    14  "tabula-peer-v2" (ASCII, no terminator): the domain and version of this layout
///     14    32  the WireGuard public key
///     46     4  the IPv4 tunnel address, network byte order (its allowed IP is that address /32)
///     50    16  the IPv6 tunnel address, network byte order (its allowed IP is that address /128)
/// </code>
/// Over address bytes, not text, so the controller and the agent agree whatever their address formatting
/// (v1 hashed <c>IPAddress.ToString()</c> text, which depends on how an IPv6 address is compressed).
/// Adding or removing a peer XORs its hash in, so every change log entry carries the hash of the set after it, and a
/// relay that keeps the same running XOR knows after each delta whether its set equals the controller's.
/// XOR cancels equal items, which cannot occur: keys are unique in the set. It detects drift, not an
/// adversary; the stream's authenticity comes from TLS and the relay token.
/// </summary>
public static class PeerSetHash
{
    /// <summary>Hash length in bytes (SHA-256).</summary>
    public const int Size = 32;

    /// <summary>Length of the hashed record of one peer.</summary>
    public const int RecordSize = 66;

    static ReadOnlySpan<byte> Domain => "tabula-peer-v2"u8;

    /// <summary>The hash of the empty set: 32 zero bytes (a new array each time).</summary>
    public static byte[] Empty => new byte[Size];

    /// <summary>
    /// Writes the 66-byte record of one peer into <paramref name="record"/>. <see cref="ArgumentException"/> when the key
    /// is not 32 bytes or an address is of the wrong family.
    /// </summary>
    public static void WriteRecord(Span<byte> record, ReadOnlySpan<byte> key, IPAddress ipv4, IPAddress ipv6)
    {
        if (record.Length < RecordSize) throw new ArgumentException($"a peer record is {RecordSize} bytes", nameof(record));
        if (key.Length != WireGuardPublicKey.Size) throw new ArgumentException($"a key is {WireGuardPublicKey.Size} bytes", nameof(key));
        if (ipv4.AddressFamily != AddressFamily.InterNetwork) throw new ArgumentException("not an IPv4 address", nameof(ipv4));
        if (ipv6.AddressFamily != AddressFamily.InterNetworkV6 || ipv6.ScopeId != 0) throw new ArgumentException("not a global IPv6 address", nameof(ipv6));
        Domain.CopyTo(record);
        key.CopyTo(record[14..]);
        ipv4.TryWriteBytes(record.Slice(46, 4), out _);
        ipv6.TryWriteBytes(record.Slice(50, 16), out _);
    }

    /// <summary>SHA-256 of the peer's record into <paramref name="destination"/> (32 bytes).</summary>
    public static void OfPeer(Span<byte> destination, ReadOnlySpan<byte> key, IPAddress ipv4, IPAddress ipv6)
    {
        Span<byte> record = stackalloc byte[RecordSize];
        WriteRecord(record, key, ipv4, ipv6);
        SHA256.HashData(record, destination);
    }

    /// <summary>Adds the peer to the set hash, or removes it (the same operation).</summary>
    public static void Toggle(Span<byte> set, ReadOnlySpan<byte> key, IPAddress ipv4, IPAddress ipv6)
    {
        if (set.Length != Size) throw new ArgumentException($"a set hash is {Size} bytes", nameof(set));
        Span<byte> peer = stackalloc byte[Size];
        OfPeer(peer, key, ipv4, ipv6);
        for (int i = 0; i < Size; i++) set[i] ^= peer[i];
    }

    /// <summary><see cref="Toggle(Span{byte}, ReadOnlySpan{byte}, IPAddress, IPAddress)"/> for addresses stored as text.</summary>
    public static void Toggle(Span<byte> set, ReadOnlySpan<byte> key, string ipv4, string ipv6) =>
        Toggle(set, key, IPAddress.Parse(ipv4), IPAddress.Parse(ipv6));
}
