using System.Security.Cryptography;
using System.Text;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// The hash of a peer set, maintained incrementally: the XOR of SHA-256 over each peer's canonical line
/// <c>"tabula-peer-v1 " + base64(key) + " " + ipv4 + "/32," + ipv6 + "/128"</c>. Adding or removing a peer
/// XORs its hash in, so every change log entry carries the hash of the set after it, and a relay that
/// keeps the same running XOR knows after each delta whether its set equals the controller's.
/// XOR cancels equal items, which cannot occur: keys are unique in the set. It detects drift, not an
/// adversary; the stream's authenticity comes from TLS and the relay token.
/// </summary>
public static class PeerSetHash
{
    public const int Size = 32;

    public static byte[] Empty => new byte[Size];

    public static byte[] OfPeer(ReadOnlySpan<byte> key, string ipv4, string ipv6) =>
        SHA256.HashData(Encoding.ASCII.GetBytes($"tabula-peer-v1 {Convert.ToBase64String(key)} {ipv4}/32,{ipv6}/128"));

    public static void Toggle(Span<byte> set, ReadOnlySpan<byte> key, string ipv4, string ipv6)
    {
        byte[] peer = OfPeer(key, ipv4, ipv6);
        for (int i = 0; i < Size; i++) set[i] ^= peer[i];
    }
}
