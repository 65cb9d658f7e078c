using System.Buffers;
using System.Buffers.Text;
using System.Net;
using System.Text;

namespace Tabula.Fleet.Protocol;

/// <summary>
/// Writes peer-stream lines (the format at <see cref="PeerLine"/>) into a buffer writer, one JSON object and a newline
/// per call, in the field order shown there. Formatted by hand into the writer's memory (a snapshot writes a line per
/// customer key, a million in a large fleet): no strings, no escaping needed, because every value is a number,
/// base64, hex or address text. Each method returns the bytes it wrote, so a caller can decide when to flush.
/// </summary>
public sealed class PeerLineWriter(IBufferWriter<byte> output)
{
    // Longest line: remove/add with the longest IPv6 text (45 characters) is under 260 bytes.
    const int MaxLine = 320;

    /// <summary><c>{"type":"snapshot","revision":R,"peers":N}</c></summary>
    public int SnapshotBegin(long revision, long count)
    {
        Span<byte> line = output.GetSpan(MaxLine);
        int at = 0;
        Put(line, ref at, "{\"type\":\"snapshot\",\"revision\":"u8);
        Put(line, ref at, revision);
        Put(line, ref at, ",\"peers\":"u8);
        Put(line, ref at, count);
        return End(line, at);
    }

    /// <summary><c>{"type":"peer","public_key":K,"allowed_ips":[V4/32,V6/128]}</c>; addresses as the controller stores their text.</summary>
    public int Peer(ReadOnlySpan<byte> publicKey, string ipv4, string ipv6)
    {
        Span<byte> line = output.GetSpan(MaxLine);
        int at = 0;
        Put(line, ref at, "{\"type\":\"peer\""u8);
        PutPeer(line, ref at, publicKey, ipv4, ipv6);
        return End(line, at);
    }

    /// <summary>As <see cref="Peer(ReadOnlySpan{byte}, string, string)"/> from parsed addresses.</summary>
    public int Peer(WireGuardPublicKey publicKey, IPAddress ipv4, IPAddress ipv6) => Peer(publicKey.Bytes, ipv4.ToString(), ipv6.ToString());

    /// <summary><c>{"type":"snapshot_end","revision":R,"hash":H}</c></summary>
    public int SnapshotEnd(long revision, ReadOnlySpan<byte> setHash)
    {
        Span<byte> line = output.GetSpan(MaxLine);
        int at = 0;
        Put(line, ref at, "{\"type\":\"snapshot_end\",\"revision\":"u8);
        Put(line, ref at, revision);
        PutHash(line, ref at, setHash);
        return End(line, at);
    }

    /// <summary><c>{"type":"add"|"remove","revision":R,"public_key":K,"allowed_ips":[…],"hash":H}</c>: the set after it hashes to H.</summary>
    public int Change(bool add, long revision, ReadOnlySpan<byte> publicKey, string ipv4, string ipv6, ReadOnlySpan<byte> setHash)
    {
        Span<byte> line = output.GetSpan(MaxLine);
        int at = 0;
        Put(line, ref at, add ? "{\"type\":\"add\",\"revision\":"u8 : "{\"type\":\"remove\",\"revision\":"u8);
        Put(line, ref at, revision);
        PutPeer(line, ref at, publicKey, ipv4, ipv6);
        PutHash(line, ref at, setHash);
        return End(line, at);
    }

    /// <summary><c>{"type":"heartbeat","revision":R}</c>: the head revision; nothing changed.</summary>
    public int Heartbeat(long revision)
    {
        Span<byte> line = output.GetSpan(MaxLine);
        int at = 0;
        Put(line, ref at, "{\"type\":\"heartbeat\",\"revision\":"u8);
        Put(line, ref at, revision);
        return End(line, at);
    }

    int End(Span<byte> line, int at)
    {
        Put(line, ref at, "}\n"u8);
        output.Advance(at);
        return at;
    }

    static void Put(Span<byte> line, ref int at, ReadOnlySpan<byte> ascii)
    {
        ascii.CopyTo(line[at..]);
        at += ascii.Length;
    }

    static void Put(Span<byte> line, ref int at, long value)
    {
        if (!Utf8Formatter.TryFormat(value, line[at..], out int written)) throw new InvalidOperationException("peer line longer than its buffer");
        at += written;
    }

    static void PutPeer(Span<byte> line, ref int at, ReadOnlySpan<byte> key, string ipv4, string ipv6)
    {
        if (key.Length != WireGuardPublicKey.Size) throw new ArgumentException($"a key is {WireGuardPublicKey.Size} bytes", nameof(key));
        if (ipv4.Length is 0 or > 15 || ipv6.Length is 0 or > 45) throw new ArgumentException("not address text");
        Put(line, ref at, ",\"public_key\":\""u8);
        Base64.EncodeToUtf8(key, line[at..], out _, out int written);
        at += written;
        Put(line, ref at, "\",\"allowed_ips\":[\""u8);
        at += Encoding.ASCII.GetBytes(ipv4, line[at..]);
        Put(line, ref at, "/32\",\""u8);
        at += Encoding.ASCII.GetBytes(ipv6, line[at..]);
        Put(line, ref at, "/128\"]"u8);
    }

    static void PutHash(Span<byte> line, ref int at, ReadOnlySpan<byte> hash)
    {
        if (hash.Length != PeerSetHash.Size) throw new ArgumentException($"a set hash is {PeerSetHash.Size} bytes", nameof(hash));
        Put(line, ref at, ",\"hash\":\""u8);
        if (!Convert.TryToHexStringLower(hash, line[at..], out int written)) throw new InvalidOperationException("peer line longer than its buffer");
        at += written;
        Put(line, ref at, "\""u8);
    }
}
