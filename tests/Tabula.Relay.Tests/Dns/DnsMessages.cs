using System.Buffers.Binary;
using System.Text;

namespace Tabula.Relay.Tests.Dns;

/// <summary>
/// The tests' own DNS message writer, independent of the forwarder's code: builds queries and responses byte by byte
/// as RFC 1035 draws them, so the parser is checked against bytes it did not write.
/// </summary>
public sealed class DnsMessages
{
    readonly List<byte> bytes = [];

    public static byte[] Name(string name)
    {
        var wire = new List<byte>();
        foreach (string label in name.TrimEnd('.').Split('.', StringSplitOptions.RemoveEmptyEntries))
        {
            wire.Add((byte)label.Length);
            wire.AddRange(Encoding.ASCII.GetBytes(label));
        }
        wire.Add(0);
        return [.. wire];
    }

    public DnsMessages Header(ushort id, ushort flags, ushort qd, ushort an, ushort ns, ushort ar) =>
        U16(id).U16(flags).U16(qd).U16(an).U16(ns).U16(ar);

    public DnsMessages U16(int value) { bytes.Add((byte)(value >> 8)); bytes.Add((byte)value); return this; }
    public DnsMessages U32(uint value) => U16((int)(value >> 16)).U16((int)(value & 0xFFFF));
    public DnsMessages Raw(params byte[] raw) { bytes.AddRange(raw); return this; }
    public DnsMessages Question(string name, ushort type = 1, ushort @class = 1) => Raw(Name(name)).U16(type).U16(@class);

    public DnsMessages Record(byte[] owner, ushort type, uint ttl, byte[] rdata, ushort @class = 1) =>
        Raw(owner).U16(type).U16(@class).U32(ttl).U16(rdata.Length).Raw(rdata);

    public DnsMessages Opt(ushort payload = 1232, bool dnssecOk = false, byte extendedRcode = 0, byte[]? options = null) =>
        Raw(0).U16(41).U16(payload).U32(((uint)extendedRcode << 24) | (dnssecOk ? 0x8000u : 0)).U16(options?.Length ?? 0).Raw(options ?? []);

    public int Length => bytes.Count;
    public byte[] ToArray() => [.. bytes];

    /// <summary>A standard query: RD set, one question, an OPT record when <paramref name="edns"/>.</summary>
    public static byte[] Query(ushort id, string name, ushort type = 1, bool edns = false, byte[]? options = null)
    {
        var m = new DnsMessages().Header(id, 0x0100, 1, 0, 0, edns ? (ushort)1 : (ushort)0).Question(name, type);
        if (edns) m.Opt(options: options);
        return m.ToArray();
    }

    /// <summary>SOA RDATA: two names and five numbers, MINIMUM last.</summary>
    public static byte[] Soa(uint minimum) =>
        [.. Name("ns.example"), .. Name("hostmaster.example"), .. Be32(1), .. Be32(3600), .. Be32(600), .. Be32(86400), .. Be32(minimum)];

    static byte[] Be32(uint v) { var b = new byte[4]; BinaryPrimitives.WriteUInt32BigEndian(b, v); return b; }

    /// <summary>A pointer to the question name (offset 12).</summary>
    public static byte[] PointerToQuestion => [0xC0, 12];
}
