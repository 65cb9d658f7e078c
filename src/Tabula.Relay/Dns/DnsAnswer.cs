using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.Relay.Dns;

/// <summary>
/// An upstream response, checked against the query that was sent and kept in the form the forwarder answers from:
/// the message up to (not including) its OPT record, the offsets of every record's TTL, the response code and how long
/// it may be cached. The OPT record is dropped because each hop writes its own (RFC 6891 §6.1.1); records after it in
/// the additional section go with it (they are optional, and no pointer can then refer into removed bytes).
/// </summary>
internal sealed class DnsAnswer
{
    DnsAnswer(byte[] message, int[] ttlOffsets, ushort flags, int questionNameLength, uint cacheSeconds, bool negative)
    {
        Message = message;
        TtlOffsets = ttlOffsets;
        Flags = flags;
        QuestionNameLength = questionNameLength;
        CacheSeconds = cacheSeconds;
        Negative = negative;
    }

    /// <summary>Header (upstream's id and flags) and sections without OPT; ARCOUNT already adjusted.</summary>
    public byte[] Message { get; }
    public int[] TtlOffsets { get; }
    public ushort Flags { get; }
    public int QuestionNameLength { get; }

    /// <summary>How long the answer may be served from cache by the rules of RFC 1035 §3.2.1 and RFC 2308 §5, before clamps.</summary>
    public uint CacheSeconds { get; }

    /// <summary>NXDOMAIN or NODATA (RFC 2308 §2).</summary>
    public bool Negative { get; }

    public DnsRcode Rcode => (DnsRcode)(Flags & DnsWire.RcodeMask);

    /// <summary>The response was truncated (TC): ask again over TCP.</summary>
    public bool Truncated => (Flags & DnsWire.FlagTc) != 0;

    /// <summary>Zeroes the message bytes.</summary>
    public void Clear() => CryptographicOperations.ZeroMemory(Message);

    /// <summary>
    /// Checks <paramref name="response"/> against the query (id, direction, opcode, one uncompressed question equal to
    /// <paramref name="name"/>, <paramref name="type"/>, <paramref name="class"/>), walks every record within the limits
    /// and copies what will be kept. Throws <see cref="DnsFormatException"/>.
    /// </summary>
    public static DnsAnswer Parse(ReadOnlySpan<byte> response, ushort id, ReadOnlySpan<byte> name, ushort type, ushort @class)
    {
        if (response.Length < DnsLimits.HeaderBytes)
            DnsFormatException.Throw(DnsFormatError.TooShort, response.Length);
        if (response.Length > DnsLimits.MaxMessageBytes)
            DnsFormatException.Throw(DnsFormatError.TooLong, DnsLimits.MaxMessageBytes);
        ushort flags = DnsWire.Flags(response);
        if (DnsWire.Id(response) != id)
            DnsFormatException.Throw(DnsFormatError.Mismatch, 0);
        if ((flags & DnsWire.FlagQr) == 0)
            DnsFormatException.Throw(DnsFormatError.WrongDirection, 2);
        if ((flags & DnsWire.OpcodeMask) != 0)
            DnsFormatException.Throw(DnsFormatError.UnsupportedOpcode, 2);
        if (DnsWire.QdCount(response) != 1)
            DnsFormatException.Throw(DnsFormatError.BadCounts, 4);
        int an = DnsWire.AnCount(response), ns = DnsWire.NsCount(response), ar = DnsWire.ArCount(response);
        if (an + ns + ar > DnsLimits.MaxRecords)
            DnsFormatException.Throw(DnsFormatError.TooManyRecords, 6);

        Span<byte> questionName = stackalloc byte[DnsLimits.MaxNameBytes];
        int position = DnsName.Read(response, DnsLimits.HeaderBytes, questionName, out int questionLength, out bool compressed);
        if (position + 4 > response.Length)
            DnsFormatException.Throw(DnsFormatError.Truncated, position);
        if (compressed || !DnsName.EqualsIgnoreCase(questionName[..questionLength], name)
            || BinaryPrimitives.ReadUInt16BigEndian(response[position..]) != type
            || BinaryPrimitives.ReadUInt16BigEndian(response[(position + 2)..]) != @class)
            DnsFormatException.Throw(DnsFormatError.Mismatch, DnsLimits.HeaderBytes);
        position += 4;

        var ttlOffsets = new List<int>(an + ns + ar);
        uint minTtl = uint.MaxValue;
        uint? negativeTtl = null;
        int keptEnd = position, keptAdditional = 0;
        byte extendedRcode = 0;
        bool sawOpt = false;
        for (int i = 0; i < an + ns + ar; i++)
        {
            int start = position;
            position = DnsName.Skip(response, position);
            if (position + 10 > response.Length)
                DnsFormatException.Throw(DnsFormatError.Truncated, position);
            ushort rrType = BinaryPrimitives.ReadUInt16BigEndian(response[position..]);
            int ttlOffset = position + 4;
            int rdLength = BinaryPrimitives.ReadUInt16BigEndian(response[(position + 8)..]);
            int rdata = position + 10;
            if (rdata + rdLength > response.Length)
                DnsFormatException.Throw(DnsFormatError.Truncated, rdata);
            position = rdata + rdLength;

            if (rrType == DnsWire.TypeOpt)
            {
                if (i < an + ns || sawOpt || response[start] != 0)
                    DnsFormatException.Throw(DnsFormatError.BadOpt, start);
                sawOpt = true;
                extendedRcode = response[ttlOffset];
                continue;
            }
            if (sawOpt)
                continue;   // after the OPT record: dropped
            // RFC 2181 §8: a TTL with the top bit set is zero.
            uint ttl = BinaryPrimitives.ReadUInt32BigEndian(response[ttlOffset..]);
            if (ttl > int.MaxValue)
                ttl = 0;
            minTtl = Math.Min(minTtl, ttl);
            ttlOffsets.Add(ttlOffset);
            if (rrType == DnsWire.TypeSoa && i >= an && i < an + ns && negativeTtl is null)
                negativeTtl = Math.Min(ttl, SoaMinimum(response, rdata, rdLength));
            keptEnd = position;
            if (i >= an + ns)
                keptAdditional++;
        }

        if (extendedRcode != 0)
            DnsFormatException.Throw(DnsFormatError.BadOpt, keptEnd);   // BADVERS and friends: not an answer to keep

        var rcode = (DnsRcode)(flags & DnsWire.RcodeMask);
        bool negative = rcode == DnsRcode.NxDomain || (rcode == DnsRcode.NoError && an == 0);
        uint cacheSeconds = (flags & DnsWire.FlagTc) != 0 ? 0
            : negative ? negativeTtl ?? 0                 // RFC 2308 §5: no SOA, no negative caching
            : rcode == DnsRcode.NoError ? (minTtl == uint.MaxValue ? 0 : minTtl)
            : 0;                                           // SERVFAIL, REFUSED, …: never cached

        byte[] kept = response[..keptEnd].ToArray();
        BinaryPrimitives.WriteUInt16BigEndian(kept.AsSpan(10), (ushort)keptAdditional);
        return new DnsAnswer(kept, [.. ttlOffsets], flags, questionLength, cacheSeconds, negative);
    }

    static uint SoaMinimum(ReadOnlySpan<byte> message, int rdata, int rdLength)
    {
        // RFC 1035 §3.3.13: MNAME, RNAME, then SERIAL REFRESH RETRY EXPIRE MINIMUM (five 32-bit numbers).
        int position = DnsName.Skip(message, rdata);
        position = DnsName.Skip(message, position);
        if (position + 20 != rdata + rdLength)
            DnsFormatException.Throw(DnsFormatError.Truncated, rdata);
        uint minimum = BinaryPrimitives.ReadUInt32BigEndian(message[(position + 16)..]);
        return minimum > int.MaxValue ? 0 : minimum;
    }

    /// <summary>
    /// Writes the answer for a client: its id, its RD and CD bits, its question's case, TTLs less
    /// <paramref name="ageSeconds"/>, and an OPT record when it sent one. Truncates (header, question, OPT, TC set) when
    /// the result exceeds <paramref name="limit"/>. Returns the length written.
    /// </summary>
    public int WriteFor(DnsQuery query, Span<byte> destination, uint ageSeconds, int limit)
    {
        int optLength = query.HasEdns ? 11 : 0;
        ushort flags = (ushort)(DnsWire.FlagQr | DnsWire.FlagRa | (Flags & (DnsWire.FlagAa | DnsWire.FlagAd | DnsWire.RcodeMask))
            | (query.Flags & (DnsWire.FlagRd | DnsWire.FlagCd)));
        if (Message.Length + optLength > limit)
            return WriteTruncated(query, destination, flags);

        Message.CopyTo(destination);
        var header = destination[..DnsLimits.HeaderBytes];
        BinaryPrimitives.WriteUInt16BigEndian(header, query.Id);
        BinaryPrimitives.WriteUInt16BigEndian(header[2..], flags);
        BinaryPrimitives.WriteUInt16BigEndian(header[10..], (ushort)(DnsWire.ArCount(Message) + (query.HasEdns ? 1 : 0)));
        query.Name.CopyTo(destination[DnsLimits.HeaderBytes..]);
        foreach (int offset in TtlOffsets)
        {
            uint ttl = BinaryPrimitives.ReadUInt32BigEndian(Message.AsSpan(offset));
            BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], ttl > int.MaxValue || ttl < ageSeconds ? 0 : ttl - ageSeconds);
        }
        int length = Message.Length;
        if (query.HasEdns)
            length += DnsQuery.WriteOpt(destination[length..], DnsLimits.MaxUdpPayload, 0, query.DnssecOk, default);
        return length;
    }

    static int WriteTruncated(DnsQuery query, Span<byte> destination, ushort flags)
    {
        DnsWire.WriteHeader(destination, query.Id, (ushort)(flags | DnsWire.FlagTc), 1, 0, 0, query.HasEdns ? (ushort)1 : (ushort)0);
        int length = DnsLimits.HeaderBytes + query.WriteQuestion(destination[DnsLimits.HeaderBytes..]);
        if (query.HasEdns)
            length += DnsQuery.WriteOpt(destination[length..], DnsLimits.MaxUdpPayload, 0, query.DnssecOk, default);
        return length;
    }

    /// <summary>
    /// An answer the forwarder makes itself (FORMERR, NOTIMP, REFUSED, SERVFAIL, BADVERS): the client's id and RD, the
    /// question when it was read, and an OPT record when the client sent one (carrying the upper rcode bits).
    /// </summary>
    public static int WriteError(DnsQuery query, bool questionRead, DnsRcode rcode, Span<byte> destination)
    {
        int code = (int)rcode;
        ushort flags = (ushort)(DnsWire.FlagQr | DnsWire.FlagRa | (query.Flags & (DnsWire.FlagRd | DnsWire.FlagCd | DnsWire.OpcodeMask)) | (code & 0xF));
        bool opt = questionRead && query.HasEdns;
        DnsWire.WriteHeader(destination, query.Id, flags, questionRead ? (ushort)1 : (ushort)0, 0, 0, opt ? (ushort)1 : (ushort)0);
        int length = DnsLimits.HeaderBytes;
        if (questionRead)
            length += query.WriteQuestion(destination[length..]);
        if (opt)
            length += DnsQuery.WriteOpt(destination[length..], DnsLimits.MaxUdpPayload, (byte)(code >> 4), query.DnssecOk, default);
        return length;
    }
}
