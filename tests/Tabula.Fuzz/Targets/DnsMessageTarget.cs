using System.Buffers.Binary;
using Tabula.Relay.Dns;

namespace Tabula.Fuzz.Targets;

/// <summary>
/// A DNS message as the relay's in-tunnel forwarder reads it (Tabula.Relay Dns): the same bytes as a customer's query
/// (<see cref="DnsQuery"/>) and as an upstream response (<see cref="DnsAnswer"/>), checked against the question the
/// response itself carries so that its records are walked. An accepted query, written upstream and read again, is the
/// same question with the same EDNS options; its error answers read back as responses to it. An accepted response
/// keeps its TTL offsets inside the kept bytes, and the answer written for a client reads back with the same rcode,
/// within the client's size limit.
/// </summary>
public static class DnsMessageTarget
{
    const ushort UpstreamId = 0x4242;

    public static bool Fuzz(ReadOnlySpan<byte> input)
    {
        bool accepted = false;
        var query = new DnsQuery();
        try
        {
            query.Parse(input);
            accepted = true;
            CheckQuery(query, input);
        }
        catch (DnsFormatException) { }
        finally { query.Clear(); }

        try
        {
            Span<byte> name = stackalloc byte[DnsLimits.MaxNameBytes];
            (ushort type, ushort @class, int nameLength) = input.Length >= DnsLimits.HeaderBytes ? OwnQuestion(input, name) : default;
            var answer = DnsAnswer.Parse(input, input.Length >= 2 ? DnsWire.Id(input) : (ushort)0, name[..nameLength], type, @class);
            accepted = true;
            CheckAnswer(answer, name[..nameLength], type, @class, input);
        }
        catch (DnsFormatException) { }
        return accepted;
    }

    static void CheckQuery(DnsQuery query, ReadOnlySpan<byte> input)
    {
        FuzzFinding.Check(query.NameLength is > 0 and <= DnsLimits.MaxNameBytes && query.Name[^1] == 0, "DNS query: name length out of range", input);
        byte[] upstream = new byte[DnsLimits.HeaderBytes + DnsLimits.MaxNameBytes + 4 + 11 + DnsLimits.MaxQueryBytes];
        int length = query.WriteUpstream(upstream, UpstreamId);
        var again = new DnsQuery();
        try
        {
            try { again.Parse(upstream.AsSpan(0, length)); }
            catch (DnsFormatException e) { FuzzFinding.Fail($"DNS query: the upstream query does not parse ({e.Reason})", input); }
            FuzzFinding.Check(again.Id == UpstreamId && again.RecursionDesired && again.CheckingDisabled == query.CheckingDisabled
                && again.Name.SequenceEqual(query.Name) && again.Type == query.Type && again.Class == query.Class
                && again.HasEdns == query.HasEdns && again.DnssecOk == query.DnssecOk
                && again.ForwardedOptions.SequenceEqual(query.ForwardedOptions), "DNS query: parse, write upstream, parse changed it", input);
        }
        finally { again.Clear(); }

        byte[] error = new byte[DnsLimits.HeaderBytes + DnsLimits.MaxNameBytes + 4 + 11];
        foreach (var rcode in (ReadOnlySpan<DnsRcode>)[DnsRcode.ServFail, DnsRcode.Refused])
        {
            int written = DnsAnswer.WriteError(query, questionRead: true, rcode, error);
            DnsAnswer answer;
            try { answer = DnsAnswer.Parse(error.AsSpan(0, written), query.Id, query.Name, query.Type, query.Class); }
            catch (DnsFormatException e) { FuzzFinding.Fail($"DNS query: our {rcode} answer does not parse as a response ({e.Reason})", input); return; }
            FuzzFinding.Check(answer.Rcode == rcode && answer.CacheSeconds == 0, "DNS query: an error answer reads back with another rcode or is cached", input);
        }
    }

    static void CheckAnswer(DnsAnswer answer, ReadOnlySpan<byte> name, ushort type, ushort @class, ReadOnlySpan<byte> input)
    {
        FuzzFinding.Check(answer.Message.Length <= input.Length && answer.QuestionNameLength == name.Length, "DNS response: kept more than was read", input);
        FuzzFinding.Check(answer.TtlOffsets.All(o => o >= DnsLimits.HeaderBytes && o + 4 <= answer.Message.Length), "DNS response: a TTL offset outside the kept bytes", input);

        // The client asks the same question (with EDNS); the answer written for it reads back as a response to it.
        byte[] question = [0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1, .. name, (byte)(type >> 8), (byte)type, (byte)(@class >> 8), (byte)@class,
            0, 0, 41, 0x04, 0xD0, 0, 0, 0, 0, 0, 0];
        var query = new DnsQuery();
        try
        {
            query.Parse(question);
            byte[] written = new byte[answer.Message.Length + 11];
            int length = answer.WriteFor(query, written, ageSeconds: 1, query.UdpLimit);
            FuzzFinding.Check(length <= query.UdpLimit, "DNS response: the client's answer is over its limit", input);
            DnsAnswer again;
            try { again = DnsAnswer.Parse(written.AsSpan(0, length), query.Id, query.Name, type, @class); }
            catch (DnsFormatException e) { FuzzFinding.Fail($"DNS response: the client's answer does not parse ({e.Reason})", input); return; }
            FuzzFinding.Check(again.Rcode == answer.Rcode, "DNS response: the client's answer has another rcode", input);
            FuzzFinding.Check(again.Truncated || (again.Negative == answer.Negative && again.TtlOffsets.Length == answer.TtlOffsets.Length),
                "DNS response: the client's answer lost records", input);
        }
        catch (DnsFormatException e) { FuzzFinding.Fail($"DNS response: its own question does not parse as a query ({e.Reason})", input); }
        finally { query.Clear(); }
    }

    /// <summary>The response's own question (so the parser's match on it passes); an empty name when it has none.</summary>
    static (ushort Type, ushort Class, int NameLength) OwnQuestion(ReadOnlySpan<byte> message, Span<byte> name)
    {
        try
        {
            int position = DnsName.Read(message, DnsLimits.HeaderBytes, name, out int length, out _);
            return position + 4 <= message.Length
                ? (BinaryPrimitives.ReadUInt16BigEndian(message[position..]), BinaryPrimitives.ReadUInt16BigEndian(message[(position + 2)..]), length)
                : ((ushort)0, (ushort)0, length);
        }
        catch (DnsFormatException) { return default; }
    }
}
