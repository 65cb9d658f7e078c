using System.Buffers.Binary;
using System.Text;
using CsCheck;
using Tabula.Relay.Dns;

namespace Tabula.Relay.Tests.Dns;

/// <summary>The query parser, the response parser and the answer writer, against bytes written by <see cref="DnsMessages"/>.</summary>
public sealed class DnsMessageTests
{
    const ushort Upstream = 0x4242;

    static DnsQuery Query(byte[] message)
    {
        var query = new DnsQuery();
        query.Parse(message);
        return query;
    }

    static DnsFormatError QueryError(byte[] message) =>
        Assert.Throws<DnsFormatException>(() => new DnsQuery().Parse(message)).Reason;

    static DnsAnswer Answer(byte[] response, string name = "www.example", ushort type = 1) =>
        DnsAnswer.Parse(response, Upstream, DnsMessages.Name(name), type, 1);

    static DnsFormatError AnswerError(byte[] response, string name = "www.example") =>
        Assert.Throws<DnsFormatException>(() => Answer(response, name)).Reason;

    static DnsMessages Response(string name = "www.example", ushort flags = 0x8180, ushort an = 1, ushort ns = 0, ushort ar = 0) =>
        new DnsMessages().Header(Upstream, flags, 1, an, ns, ar).Question(name);

    [Fact]
    public void Query_with_edns_is_read_and_client_subnet_and_cookie_are_not_forwarded()
    {
        byte[] nsid = [0, 3, 0, 0];
        byte[] subnet = [0, 8, 0, 7, 0, 1, 24, 0, 10, 64, 0];
        byte[] cookie = [0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8];
        var query = Query(DnsMessages.Query(7, "WWW.Example", type: 28, edns: true, options: [.. subnet, .. nsid, .. cookie]));

        Assert.Equal(7, query.Id);
        Assert.Equal(28, query.Type);
        Assert.True(query.HasEdns);
        Assert.Equal(nsid, query.ForwardedOptions.ToArray());
        Assert.Equal(DnsMessages.Name("WWW.Example"), query.Name.ToArray());

        var upstream = new byte[600];
        int length = query.WriteUpstream(upstream, 0x9999);
        var expected = new DnsMessages().Header(0x9999, 0x0100, 1, 0, 0, 1).Question("WWW.Example", 28).Opt(options: nsid).ToArray();
        Assert.Equal(expected, upstream[..length]);
    }

    [Fact]
    public void Query_clear_zeroes_the_name()
    {
        var query = Query(DnsMessages.Query(7, "secret.example"));
        query.Clear();
        Assert.Equal(0, query.NameLength);
        var field = typeof(DnsQuery).GetField("name", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance)!;
        Assert.All((byte[])field.GetValue(query)!, b => Assert.Equal(0, b));
    }

    [Theory]
    [InlineData(new byte[] { 1, 2, 3 }, DnsFormatError.TooShort)]
    [InlineData(new byte[] { 0, 1, 0x81, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 }, DnsFormatError.WrongDirection)]
    [InlineData(new byte[] { 0, 1, 0x29, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 }, DnsFormatError.UnsupportedOpcode)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1 }, DnsFormatError.BadCounts)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1 }, DnsFormatError.BadCounts)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0 }, DnsFormatError.Truncated)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 9 }, DnsFormatError.TrailingBytes)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 1, 4, 0, 0, 0, 0, 0, 0, 0 }, DnsFormatError.BadOpt)]
    [InlineData(new byte[] { 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 9, 0, 3 }, DnsFormatError.Truncated)]
    public void Malformed_queries_are_refused_with_their_reason(byte[] message, DnsFormatError reason) =>
        Assert.Equal(reason, QueryError(message));

    [Fact]
    public void Query_over_the_size_limit_is_refused()
    {
        var message = new DnsMessages().Header(1, 0x0100, 1, 0, 0, 1).Question("a.example").Opt(options: [0, 3, 0x05, 0, .. new byte[1280]]).ToArray();
        Assert.Equal(DnsFormatError.TooLong, QueryError(message));
    }

    [Fact]
    public void Names_of_255_bytes_are_read_and_256_are_refused()
    {
        string label63 = new('a', 63);
        string ok = $"{label63}.{label63}.{label63}.{new string('b', 61)}";        // 3·64 + 62 + 1 = 255
        string over = $"{label63}.{label63}.{label63}.{new string('b', 62)}";      // 256
        Assert.Equal(255, DnsMessages.Name(ok).Length);
        Assert.Equal(255, Query(DnsMessages.Query(1, ok)).NameLength);
        Assert.Equal(DnsFormatError.NameTooLong, Assert.Throws<DnsFormatException>(
            () => DnsName.Skip(new DnsMessages().Header(1, 0x100, 1, 0, 0, 0).Raw(DnsMessages.Name(over)).U16(1).U16(1).ToArray(), 12)).Reason);
    }

    [Theory]
    [InlineData(64, DnsFormatError.BadLabel)]     // 0x40: reserved label type, and over 63 anyway
    [InlineData(0x80, DnsFormatError.BadLabel)]
    [InlineData(63, null)]
    public void Label_lengths_over_63_are_refused(int length, DnsFormatError? reason)
    {
        byte[] message = new DnsMessages().Header(1, 0x100, 1, 0, 0, 0).Raw((byte)length).Raw(new byte[Math.Min(length, 63)]).Raw(0).U16(1).U16(1).ToArray();
        if (reason is null)
            Assert.Equal(65, Query(message).NameLength);
        else
            Assert.Equal(reason, QueryError(message));
    }

    [Fact]
    public void Compression_loops_and_forward_pointers_are_refused()
    {
        // A pointer to itself, two pointers pointing at each other, a pointer forward, a label run ending in a pointer back to its own start.
        var self = Response(an: 1).Raw(0xC0, 29).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        var pair = Response(an: 1).Raw(0xC0, 31, 0xC0, 29).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        var forward = Response(an: 1).Raw(0xC0, 40).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        var run = Response(an: 1).Raw(1, (byte)'x', 0xC0, 29).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        Assert.Equal(29, Response().Length);
        Assert.Equal(DnsFormatError.BadPointer, AnswerError(self));
        Assert.Equal(DnsFormatError.BadPointer, AnswerError(pair));
        Assert.Equal(DnsFormatError.BadPointer, AnswerError(forward));
        Assert.Equal(DnsFormatError.BadPointer, AnswerError(run));
    }

    [Theory]
    [InlineData("3E3881800001000100000001076578616D706C6500000F0001C00000001001000002580010100A1B6D6D61696C076578616D706C650000002904D0000000000000", 0x3E38, "example")]
    [InlineData("5538818000010001000000010765786D61706C6500000F0001C001000F0001000002580010000A046D61696C076578616D706C650000182904D0000000000000", 0x5538, "exmaple")]
    public void Pointers_into_the_header_are_refused(string afl, int id, string question)
    {
        // afl (DnsMessage target): an answer whose owner name points at offset 0 or 1 was accepted; the forwarder then
        // rewrites the header (id, flags, counts) and the client got a name that decodes to other bytes, or to none.
        Assert.Equal(DnsFormatError.BadPointer, Assert.Throws<DnsFormatException>(() =>
            DnsAnswer.Parse(Convert.FromHexString(afl), (ushort)id, DnsMessages.Name(question), 15, 1)).Reason);
        for (byte offset = 0; offset < 12; offset++)
        {
            var intoHeader = Response().Raw(0xC0, offset).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
            Assert.Equal(DnsFormatError.BadPointer, AnswerError(intoHeader));
        }
        // A question name that is only a pointer into the header is refused in a query too (FORMERR, not a name made of header bytes).
        Assert.Equal(DnsFormatError.BadPointer, QueryError([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 4, 0, 1, 0, 1]));
        // The usual pointer, to the question at offset 12, is still read.
        Assert.Equal(60u, Answer(Response().Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray()).CacheSeconds);
    }

    [Fact]
    public void Pointer_to_a_name_that_runs_over_the_pointer_is_refused()
    {
        // afl in CI (DnsMessage target): the answer's owner points at offset 26, inside the question's type, where a
        // "label" of 28 bytes runs over the pointer and the record after it. Accepted, the client's copy (rewritten after
        // the question) decoded to other bytes and did not parse. A pointer names a prior occurrence: its labels must
        // end before the pointer.
        byte[] afl = Convert.FromHexString("EEA08180000100010000000003777777076578026D706C6500001C0001C01A00320001000002580003E8010DB8000000000000000000000010");
        Assert.Equal(DnsFormatError.BadPointer, Assert.Throws<DnsFormatException>(() =>
            DnsAnswer.Parse(afl, 0xEEA0, afl.AsSpan(12, 13), 0x1C, 1)).Reason);
    }

    [Fact]
    public void Counts_that_promise_more_records_than_sent_are_truncation()
    {
        var lying = Response(an: 5).Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        Assert.Equal(DnsFormatError.Truncated, AnswerError(lying));
        var overLimit = new DnsMessages().Header(Upstream, 0x8180, 1, 0xFFFF, 0, 0).Question("www.example").ToArray();
        Assert.Equal(DnsFormatError.TooManyRecords, AnswerError(overLimit));
        var rdataPastEnd = Response().Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(40).Raw(1, 2, 3, 4).ToArray();
        Assert.Equal(DnsFormatError.Truncated, AnswerError(rdataPastEnd));
    }

    [Fact]
    public void Response_for_another_id_or_question_is_a_mismatch()
    {
        var good = Response().Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4).ToArray();
        Assert.Equal(DnsFormatError.Mismatch, Assert.Throws<DnsFormatException>(() => DnsAnswer.Parse(good, Upstream + 1, DnsMessages.Name("www.example"), 1, 1)).Reason);
        Assert.Equal(DnsFormatError.Mismatch, AnswerError(good, "other.example"));
        Assert.Equal(DnsFormatError.Mismatch, Assert.Throws<DnsFormatException>(() => DnsAnswer.Parse(good, Upstream, DnsMessages.Name("www.example"), 28, 1)).Reason);
        Assert.Equal(60u, Answer(good, "WWW.EXAMPLE").CacheSeconds);   // names compare without case
    }

    [Fact]
    public void Positive_ttl_is_the_smallest_of_the_records()
    {
        var response = Response(an: 2, ar: 1)
            .Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(300).U16(4).Raw(1, 2, 3, 4)
            .Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(120).U16(4).Raw(1, 2, 3, 5)
            .Opt().ToArray();
        var answer = Answer(response);
        Assert.Equal(120u, answer.CacheSeconds);
        Assert.False(answer.Negative);
        Assert.Equal(2, answer.TtlOffsets.Length);
        Assert.Equal(response.Length - 11, answer.Message.Length);       // OPT dropped
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(answer.Message.AsSpan(10)));
    }

    [Fact]
    public void Negative_ttl_is_the_soa_minimum_or_its_ttl_whichever_is_less()
    {
        var nxdomain = Response(flags: 0x8183, an: 0, ns: 1).Raw(DnsMessages.Name("example")).U16(6).U16(1).U32(900).U16(DnsMessages.Soa(300).Length).Raw(DnsMessages.Soa(300)).ToArray();
        var answer = Answer(nxdomain);
        Assert.True(answer.Negative);
        Assert.Equal(DnsRcode.NxDomain, answer.Rcode);
        Assert.Equal(300u, answer.CacheSeconds);

        var nodata = Response(an: 0, ns: 1).Raw(DnsMessages.Name("example")).U16(6).U16(1).U32(100).U16(DnsMessages.Soa(300).Length).Raw(DnsMessages.Soa(300)).ToArray();
        Assert.Equal(100u, Answer(nodata).CacheSeconds);

        var noSoa = Response(flags: 0x8183, an: 0).ToArray();
        Assert.Equal(0u, Answer(noSoa).CacheSeconds);             // RFC 2308 §5: not cached without an SOA
        var servfail = Response(flags: 0x8182, an: 0).ToArray();
        Assert.Equal(0u, Answer(servfail).CacheSeconds);
        var truncated = Response(flags: 0x8380, an: 0).ToArray();
        Assert.True(Answer(truncated).Truncated);
        Assert.Equal(0u, Answer(truncated).CacheSeconds);
    }

    [Fact]
    public void Records_after_opt_are_dropped_and_a_second_opt_or_extended_rcode_refused()
    {
        var after = Response(an: 1, ar: 2)
            .Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(4).Raw(1, 2, 3, 4)
            .Opt()
            .Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(60).U16(4).Raw(9, 9, 9, 9).ToArray();
        var answer = Answer(after);
        Assert.Equal(29 + 16, answer.Message.Length);
        Assert.Single(answer.TtlOffsets);

        var twice = Response(an: 0, ar: 2).Opt().Opt().ToArray();
        Assert.Equal(DnsFormatError.BadOpt, AnswerError(twice));
        var inAnswer = Response(an: 1).Opt().ToArray();
        Assert.Equal(DnsFormatError.BadOpt, AnswerError(inAnswer));
        var badvers = Response(an: 0, ar: 1).Opt(extendedRcode: 1).ToArray();
        Assert.Equal(DnsFormatError.BadOpt, AnswerError(badvers));
    }

    [Fact]
    public void Answer_for_a_client_carries_its_id_case_flags_and_aged_ttls()
    {
        var response = Response(name: "www.example", flags: 0x8580, ar: 1)
            .Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(300).U16(4).Raw(1, 2, 3, 4).Opt().ToArray();
        var answer = Answer(response);
        var query = Query(DnsMessages.Query(0x1234, "WwW.ExAmPlE", edns: true));
        var output = new byte[2000];
        int length = answer.WriteFor(query, output, ageSeconds: 100, limit: 1232);

        Assert.Equal(0x1234, BinaryPrimitives.ReadUInt16BigEndian(output));
        Assert.Equal(0x8580, BinaryPrimitives.ReadUInt16BigEndian(output.AsSpan(2)));   // QR AA RD RA kept
        Assert.Equal(1, BinaryPrimitives.ReadUInt16BigEndian(output.AsSpan(10)));       // our OPT
        Assert.Equal(DnsMessages.Name("WwW.ExAmPlE"), output[12..(12 + 13)]);
        Assert.Equal(200u, BinaryPrimitives.ReadUInt32BigEndian(output.AsSpan(answer.TtlOffsets[0])));
        Assert.Equal(answer.Message.Length + 11, length);

        Assert.Equal(0u, TtlAfter(answer, query, 400));   // older than its TTL: zero, never wrapped
    }

    static uint TtlAfter(DnsAnswer answer, DnsQuery query, uint age)
    {
        var output = new byte[2000];
        answer.WriteFor(query, output, age, 1232);
        return BinaryPrimitives.ReadUInt32BigEndian(output.AsSpan(answer.TtlOffsets[0]));
    }

    [Fact]
    public void Answer_over_the_client_limit_is_truncated_to_the_question()
    {
        var big = Response(an: 40);
        for (int i = 0; i < 40; i++)
            big.Raw(DnsMessages.PointerToQuestion).U16(16).U16(1).U32(60).U16(21).Raw(20).Raw(Encoding.ASCII.GetBytes(new string('t', 20)));
        var answer = DnsAnswer.Parse(big.ToArray(), Upstream, DnsMessages.Name("www.example"), 1, 1);
        var query = Query(DnsMessages.Query(9, "www.example"));
        var output = new byte[4000];
        int length = answer.WriteFor(query, output, 0, 512);
        Assert.Equal(12 + 13 + 4, length);
        Assert.NotEqual(0, BinaryPrimitives.ReadUInt16BigEndian(output.AsSpan(2)) & 0x0200);   // TC
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(output.AsSpan(6)));
        Assert.True(answer.WriteFor(query, output, 0, 65535) > 512);
    }

    static void ParseBoth(byte[] message)
    {
        try { new DnsQuery().Parse(message); }
        catch (DnsFormatException) { }
        try { DnsAnswer.Parse(message, message.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(message) : (ushort)0, DnsMessages.Name("www.example"), 1, 1); }
        catch (DnsFormatException) { }
    }

    [Fact]
    public void Random_messages_give_only_typed_errors() =>
        Gen.Byte.Array[0, 600].Sample(ParseBoth, iter: 20_000);

    [Fact]
    public void Every_prefix_and_mutation_of_a_valid_response_gives_only_typed_errors()
    {
        byte[] seed = Response(an: 1, ns: 1, ar: 1)
            .Raw(DnsMessages.PointerToQuestion).U16(5).U16(1).U32(60).U16(4).Raw(3, (byte)'w', (byte)'w', 0xC0, 16)
            .Raw(DnsMessages.Name("example")).U16(6).U16(1).U32(60).U16(DnsMessages.Soa(5).Length).Raw(DnsMessages.Soa(5))
            .Opt().ToArray();
        ParseBoth(seed);
        for (int cut = 0; cut < seed.Length; cut++)
            if (cut >= 12)
                Assert.Throws<DnsFormatException>(() => Answer(seed[..cut]));
        Gen.Select(Gen.Int[0, seed.Length - 1].Array[1, 6], Gen.Byte.Array[6], Gen.Int[0, seed.Length])
            .Sample((positions, values, cut) =>
            {
                byte[] mutated = (byte[])seed.Clone();
                for (int i = 0; i < positions.Length; i++)
                    mutated[positions[i]] = values[i];
                ParseBoth(mutated[..cut]);
            }, iter: 20_000);
    }

    [Fact]
    public void Exception_messages_never_contain_the_name()
    {
        Gen.String[Gen.Char['a', 'z'], 8, 40].Sample(label =>
        {
            string name = $"{label}.example";
            byte[][] broken =
            [
                DnsMessages.Query(1, name)[..^1],
                [.. DnsMessages.Query(1, name), 7],
                new DnsMessages().Header(1, 0x100, 1, 0, 0, 0).Raw(DnsMessages.Name(name)[..^1]).Raw(0xC0, 99).U16(1).U16(1).ToArray(),
                new DnsMessages().Header(1, 0x100, 1, 0, 0, 1).Question(name).Raw(DnsMessages.Name(name)).U16(41).ToArray(),
            ];
            foreach (byte[] message in broken)
            {
                var error = Assert.Throws<DnsFormatException>(() => new DnsQuery().Parse(message));
                Assert.DoesNotContain(label, error.ToString());
                var response = Response(name).ToArray();
                var mismatch = Assert.Throws<DnsFormatException>(() => DnsAnswer.Parse(response, Upstream, DnsMessages.Name("other.example"), 1, 1));
                Assert.DoesNotContain(label, mismatch.ToString());
            }
        }, iter: 200);
    }

    [Fact]
    public void Error_answers_echo_the_id_and_question()
    {
        var query = Query(DnsMessages.Query(0x7777, "x.example", edns: true));
        var output = new byte[600];
        int length = DnsAnswer.WriteError(query, questionRead: true, DnsRcode.BadVers, output);
        var expected = new DnsMessages().Header(0x7777, 0x8180, 1, 0, 0, 1).Question("x.example").Opt(extendedRcode: 1).ToArray();
        Assert.Equal(expected, output[..length]);
    }
}
