using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.Relay.Dns;

/// <summary>
/// A client's query, parsed and checked (RFC 1035 §4.1, RFC 6891 §6): one question, no answer or authority records,
/// at most one OPT record. Holds the name in wire form with the client's case; <see cref="Clear"/> zeroes it.
/// </summary>
internal sealed class DnsQuery
{
    readonly byte[] name = new byte[DnsLimits.MaxNameBytes];
    readonly byte[] options = new byte[DnsLimits.MaxQueryBytes];
    int optionsLength;

    public ushort Id { get; private set; }
    public ushort Flags { get; private set; }
    public int NameLength { get; private set; }
    public ushort Type { get; private set; }
    public ushort Class { get; private set; }

    /// <summary>The client sent an OPT record.</summary>
    public bool HasEdns { get; private set; }
    public ushort EdnsPayload { get; private set; }
    public byte EdnsVersion { get; private set; }
    public bool DnssecOk { get; private set; }

    public ReadOnlySpan<byte> Name => name.AsSpan(0, NameLength);

    /// <summary>EDNS options still to forward (client subnet and cookie removed), as option-code/length/data triples.</summary>
    public ReadOnlySpan<byte> ForwardedOptions => options.AsSpan(0, optionsLength);

    public bool CheckingDisabled => (Flags & DnsWire.FlagCd) != 0;
    public bool RecursionDesired => (Flags & DnsWire.FlagRd) != 0;

    /// <summary>
    /// Parses <paramref name="message"/> into this instance. Throws <see cref="DnsFormatException"/>; after one with a
    /// reason other than <see cref="DnsFormatError.TooShort"/>, <see cref="Id"/> and <see cref="Flags"/> are set so an
    /// error can be answered.
    /// </summary>
    public void Parse(ReadOnlySpan<byte> message)
    {
        Clear();
        if (message.Length < DnsLimits.HeaderBytes)
            DnsFormatException.Throw(DnsFormatError.TooShort, message.Length);
        Id = DnsWire.Id(message);
        Flags = DnsWire.Flags(message);
        if (message.Length > DnsLimits.MaxQueryBytes)
            DnsFormatException.Throw(DnsFormatError.TooLong, DnsLimits.MaxQueryBytes);
        if ((Flags & DnsWire.FlagQr) != 0)
            DnsFormatException.Throw(DnsFormatError.WrongDirection, 2);
        if ((Flags & DnsWire.OpcodeMask) != 0)
            DnsFormatException.Throw(DnsFormatError.UnsupportedOpcode, 2);
        if (DnsWire.QdCount(message) != 1 || DnsWire.AnCount(message) != 0 || DnsWire.NsCount(message) != 0
            || DnsWire.ArCount(message) > 1)
            DnsFormatException.Throw(DnsFormatError.BadCounts, 4);

        int position = DnsName.Read(message, DnsLimits.HeaderBytes, name, out int length, out _);
        NameLength = length;
        if (position + 4 > message.Length)
            DnsFormatException.Throw(DnsFormatError.Truncated, position);
        Type = BinaryPrimitives.ReadUInt16BigEndian(message[position..]);
        Class = BinaryPrimitives.ReadUInt16BigEndian(message[(position + 2)..]);
        position += 4;

        if (DnsWire.ArCount(message) == 1)
            position = ReadOpt(message, position);
        if (position != message.Length)
            DnsFormatException.Throw(DnsFormatError.TrailingBytes, position);
    }

    int ReadOpt(ReadOnlySpan<byte> message, int position)
    {
        // RFC 6891 §6.1.2: owner is the root, type 41, CLASS = payload size, TTL = extended rcode, version, DO, Z.
        if (position + 11 > message.Length)
            DnsFormatException.Throw(DnsFormatError.Truncated, position);
        if (message[position] != 0 || BinaryPrimitives.ReadUInt16BigEndian(message[(position + 1)..]) != DnsWire.TypeOpt)
            DnsFormatException.Throw(DnsFormatError.BadOpt, position);
        HasEdns = true;
        EdnsPayload = BinaryPrimitives.ReadUInt16BigEndian(message[(position + 3)..]);
        uint ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(position + 5)..]);
        EdnsVersion = (byte)(ttl >> 16);
        DnssecOk = (ttl & DnsWire.EdnsDo) != 0;
        int rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(position + 9)..]);
        position += 11;
        if (position + rdLength > message.Length)
            DnsFormatException.Throw(DnsFormatError.Truncated, position);
        int end = position + rdLength;
        while (position < end)
        {
            if (position + 4 > end)
                DnsFormatException.Throw(DnsFormatError.Truncated, position);
            ushort code = BinaryPrimitives.ReadUInt16BigEndian(message[position..]);
            int optionLength = BinaryPrimitives.ReadUInt16BigEndian(message[(position + 2)..]);
            if (position + 4 + optionLength > end)
                DnsFormatException.Throw(DnsFormatError.Truncated, position);
            if (code is not DnsWire.OptionClientSubnet and not DnsWire.OptionCookie)
            {
                message.Slice(position, 4 + optionLength).CopyTo(options.AsSpan(optionsLength));
                optionsLength += 4 + optionLength;
            }
            position += 4 + optionLength;
        }
        return position;
    }

    /// <summary>
    /// Writes the query to send upstream under a fresh <paramref name="id"/> (never the client's): RD set, the client's
    /// CD, the question with the client's case, and an OPT record when the client sent one (payload size bounded by
    /// <see cref="DnsLimits.MaxUdpPayload"/>, the client's DO bit and its options but client subnet and cookie).
    /// </summary>
    public int WriteUpstream(Span<byte> destination, ushort id)
    {
        ushort flags = (ushort)(DnsWire.FlagRd | (Flags & DnsWire.FlagCd));
        DnsWire.WriteHeader(destination, id, flags, 1, 0, 0, HasEdns ? (ushort)1 : (ushort)0);
        int position = WriteQuestion(destination[DnsLimits.HeaderBytes..]) + DnsLimits.HeaderBytes;
        if (HasEdns)
            position += WriteOpt(destination[position..], DnsLimits.MaxUdpPayload, 0, DnssecOk, ForwardedOptions);
        return position;
    }

    /// <summary>The question section: name, type, class.</summary>
    public int WriteQuestion(Span<byte> destination)
    {
        Name.CopyTo(destination);
        BinaryPrimitives.WriteUInt16BigEndian(destination[NameLength..], Type);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(NameLength + 2)..], Class);
        return NameLength + 4;
    }

    /// <summary>An OPT record (RFC 6891 §6.1.2).</summary>
    public static int WriteOpt(Span<byte> destination, ushort payload, byte extendedRcode, bool dnssecOk, ReadOnlySpan<byte> options)
    {
        destination[0] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], DnsWire.TypeOpt);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], payload);
        BinaryPrimitives.WriteUInt32BigEndian(destination[5..], ((uint)extendedRcode << 24) | (dnssecOk ? DnsWire.EdnsDo : 0));
        BinaryPrimitives.WriteUInt16BigEndian(destination[9..], (ushort)options.Length);
        options.CopyTo(destination[11..]);
        return 11 + options.Length;
    }

    /// <summary>The largest UDP answer this client takes (RFC 6891 §6.2.5: never below 512).</summary>
    public int UdpLimit => HasEdns ? Math.Clamp((int)EdnsPayload, DnsLimits.ClassicUdpBytes, DnsLimits.MaxUdpPayload) : DnsLimits.ClassicUdpBytes;

    /// <summary>Zeroes the name and options, so a pooled instance holds no query between uses.</summary>
    public void Clear()
    {
        CryptographicOperations.ZeroMemory(name.AsSpan(0, NameLength));
        CryptographicOperations.ZeroMemory(options.AsSpan(0, optionsLength));
        NameLength = optionsLength = 0;
        Id = Flags = Type = Class = EdnsPayload = 0;
        EdnsVersion = 0;
        HasEdns = DnssecOk = false;
    }
}
