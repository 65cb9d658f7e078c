using System.Buffers.Binary;
using Tabula.Relay.Dns;

namespace Tabula.Relay.Tests.Dns;

public sealed class DnsCacheTests
{
    sealed class ManualTime : TimeProvider
    {
        long ticks = 1_000_000;
        public override long TimestampFrequency => TimeSpan.TicksPerSecond;
        public override long GetTimestamp() => ticks;
        public void Advance(TimeSpan by) => ticks += by.Ticks;
    }

    readonly ManualTime time = new();

    DnsCache Cache(int entries = 100, long bytes = 1 << 20, int minTtl = 0, int maxTtl = 86400, int maxNegative = 3600) =>
        new(entries, bytes, TimeSpan.FromSeconds(minTtl), TimeSpan.FromSeconds(maxTtl), TimeSpan.FromSeconds(maxNegative), time);

    static DnsQuery Query(string name, ushort id = 1)
    {
        var query = new DnsQuery();
        query.Parse(DnsMessages.Query(id, name));
        return query;
    }

    static DnsAnswer Positive(string name, uint ttl) => DnsAnswer.Parse(
        new DnsMessages().Header(5, 0x8180, 1, 1, 0, 0).Question(name).Raw(DnsMessages.PointerToQuestion).U16(1).U16(1).U32(ttl).U16(4).Raw(192, 0, 2, 1).ToArray(),
        5, DnsMessages.Name(name), 1, 1);

    static DnsAnswer Negative(string name, uint soaTtl, uint minimum) => DnsAnswer.Parse(
        new DnsMessages().Header(5, 0x8183, 1, 0, 1, 0).Question(name).Raw(DnsMessages.Name("example")).U16(6).U16(1).U32(soaTtl)
            .U16(DnsMessages.Soa(minimum).Length).Raw(DnsMessages.Soa(minimum)).ToArray(),
        5, DnsMessages.Name(name), 1, 1);

    static int Lookup(DnsCache cache, string name, out byte[] output, ushort id = 77)
    {
        var query = Query(name, id);
        output = new byte[1500];
        return cache.TryAnswer(new DnsCacheKey(query), query, output, 1232);
    }

    static uint FirstTtl(byte[] output, int offset) => BinaryPrimitives.ReadUInt32BigEndian(output.AsSpan(offset));

    [Fact]
    public void Hit_is_keyed_without_case_and_ages_until_the_ttl_ends()
    {
        var cache = Cache();
        var answer = Positive("a.example", 60);
        Assert.True(cache.Store(new DnsCacheKey(Query("A.EXAMPLE")), answer));
        int offset = answer.TtlOffsets[0];

        Assert.True(Lookup(cache, "a.Example", out var output) > 0);
        Assert.Equal(77, BinaryPrimitives.ReadUInt16BigEndian(output));
        Assert.Equal(60u, FirstTtl(output, offset));
        time.Advance(TimeSpan.FromSeconds(45));
        Assert.True(Lookup(cache, "a.example", out output) > 0);
        Assert.Equal(15u, FirstTtl(output, offset));
        time.Advance(TimeSpan.FromSeconds(15));
        Assert.Equal(0, Lookup(cache, "a.example", out _));
        Assert.Equal(0, cache.Count);
        Assert.All(answer.Message, b => Assert.Equal(0, b));   // expired entries are zeroed
    }

    [Fact]
    public void Type_and_dnssec_bits_are_part_of_the_key()
    {
        var cache = Cache();
        cache.Store(new DnsCacheKey(Query("a.example")), Positive("a.example", 60));
        var aaaa = new DnsQuery();
        aaaa.Parse(DnsMessages.Query(1, "a.example", type: 28));
        Assert.Equal(0, cache.TryAnswer(new DnsCacheKey(aaaa), aaaa, new byte[1500], 1232));
        var withDo = new DnsQuery();
        withDo.Parse(new DnsMessages().Header(1, 0x100, 1, 0, 0, 1).Question("a.example").Opt(dnssecOk: true).ToArray());
        Assert.Equal(0, cache.TryAnswer(new DnsCacheKey(withDo), withDo, new byte[1500], 1232));
    }

    [Fact]
    public void Ttls_are_clamped_to_min_and_max()
    {
        var cache = Cache(minTtl: 30, maxTtl: 100);
        cache.Store(new DnsCacheKey(Query("short.example")), Positive("short.example", 5));
        cache.Store(new DnsCacheKey(Query("long.example")), Positive("long.example", 100_000));
        time.Advance(TimeSpan.FromSeconds(29));
        Assert.True(Lookup(cache, "short.example", out _) > 0);
        time.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(0, Lookup(cache, "short.example", out _));
        Assert.True(Lookup(cache, "long.example", out _) > 0);
        time.Advance(TimeSpan.FromSeconds(70));
        Assert.Equal(0, Lookup(cache, "long.example", out _));
    }

    [Fact]
    public void Negative_answers_live_for_the_soa_minimum_bounded_by_the_negative_max()
    {
        var cache = Cache(maxNegative: 50);
        Assert.True(cache.Store(new DnsCacheKey(Query("gone.example")), Negative("gone.example", 900, 20)));
        Assert.True(cache.Store(new DnsCacheKey(Query("long-gone.example")), Negative("long-gone.example", 900, 600)));
        Assert.True(Lookup(cache, "gone.example", out var output) > 0);
        Assert.Equal(3, output[3] & 0xF);   // NXDOMAIN from the cache
        time.Advance(TimeSpan.FromSeconds(21));
        Assert.Equal(0, Lookup(cache, "gone.example", out _));
        Assert.True(Lookup(cache, "long-gone.example", out _) > 0);
        time.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, Lookup(cache, "long-gone.example", out _));
    }

    [Fact]
    public void Uncacheable_answers_are_not_stored()
    {
        var cache = Cache();
        Assert.False(cache.Store(new DnsCacheKey(Query("zero.example")), Positive("zero.example", 0)));
        var noSoa = DnsAnswer.Parse(new DnsMessages().Header(5, 0x8183, 1, 0, 0, 0).Question("x.example").ToArray(), 5, DnsMessages.Name("x.example"), 1, 1);
        Assert.False(cache.Store(new DnsCacheKey(Query("x.example")), noSoa));
        Assert.Equal(0, cache.Count);
        Assert.False(Cache(entries: 0).Store(new DnsCacheKey(Query("a.example")), Positive("a.example", 60)));
    }

    [Fact]
    public void Least_recently_used_goes_first_when_full_in_entries_or_bytes()
    {
        var cache = Cache(entries: 3);
        foreach (string n in new[] { "a.example", "b.example", "c.example" })
            cache.Store(new DnsCacheKey(Query(n)), Positive(n, 60));
        Assert.True(Lookup(cache, "a.example", out _) > 0);   // a is now the most recent
        var evicted = Positive("d.example", 60);
        cache.Store(new DnsCacheKey(Query("d.example")), evicted);
        Assert.Equal(3, cache.Count);
        Assert.Equal(0, Lookup(cache, "b.example", out _));
        Assert.True(Lookup(cache, "a.example", out _) > 0);

        int size = Positive("e.example", 60).Message.Length;
        var small = Cache(bytes: size * 2);
        foreach (string n in new[] { "e.example", "f.example", "g.example" })
            small.Store(new DnsCacheKey(Query(n)), Positive(n, 60));
        Assert.Equal(2, small.Count);
        Assert.Equal(0, Lookup(small, "e.example", out _));
    }
}
