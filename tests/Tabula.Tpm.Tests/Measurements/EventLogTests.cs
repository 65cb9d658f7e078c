using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using CsCheck;
using Tabula.Testing;
using Tabula.Tpm.Measurements;

namespace Tabula.Tpm.Tests.Measurements;

public sealed class EventLogTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-eventlog-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly byte[] Archive = SHA256.HashData("the OS package zip"u8);

    static EventLog Sample() => EventLog.Of([
        new MeasuredEvent(StbootPcr.Detail, StbootEvent.OspkgArchive, Archive, "ospkg.zip"u8),
        MeasuredEvent.OfData(StbootPcr.Detail, StbootEvent.OspkgManifest, """{"version":1,"os_pkg_url":"ospkg.zip"}"""u8),
        MeasuredEvent.OfData(StbootPcr.Authority, StbootEvent.SecurityConfig, """{"ospkg_signature_threshold":2}"""u8),
        MeasuredEvent.OfData(StbootPcr.Authority, StbootEvent.SigningRoot, [0x30, 0x82, 0x01, 0x00]),
        MeasuredEvent.OfData(StbootPcr.Authority, StbootEvent.HttpsRoot, []),
        MeasuredEvent.OfData(StbootPcr.Identity, StbootEvent.HostConfig, """{"network_mode":"dhcp"}"""u8),
        MeasuredEvent.OfData(StbootPcr.Identity, StbootEvent.WireGuardKey, new byte[32]),
    ]);

    static byte[] Extend(byte[] pcr, byte[] digest) => SHA256.HashData([.. pcr, .. digest]);

    [Fact]
    public void Written_log_parses_to_the_same_events_and_replays_to_the_extended_values()
    {
        var log = Sample();
        byte[] bytes = log.ToBytes();
        var read = EventLog.Parse(bytes);
        Assert.Equal(log.Events, read.Events);
        Assert.Equal(bytes, read.ToBytes());

        // By hand: each PCR from zero, extended with each event's digest in order.
        byte[] p12 = Extend(Extend(new byte[32], Archive), SHA256.HashData("""{"version":1,"os_pkg_url":"ospkg.zip"}"""u8));
        var replay = read.Replay();
        Assert.Equal([12, 13, 14], replay.Keys);
        Assert.Equal(p12, replay[12]);
        Assert.Equal(Extend(Extend(new byte[32], SHA256.HashData("""{"network_mode":"dhcp"}"""u8)), SHA256.HashData(new byte[32])), replay[14]);
        Assert.False(read.Events[0].DigestIsOfData);   // the archive: a name for data, the zip's digest
        Assert.All(read.Events.Skip(1), e => Assert.True(e.DigestIsOfData));
        Assert.Empty(EventLog.Parse(EventLog.Empty.ToBytes()).Events);
    }

    [Fact]
    public void The_header_is_a_spec_id_event03_with_only_the_sha256_bank()
    {
        byte[] bytes = EventLog.Empty.ToBytes();
        Assert.Equal(4 + 4 + 20 + 4 + 33, bytes.Length);
        Assert.Equal(0u, BinaryPrimitives.ReadUInt32LittleEndian(bytes));            // PCR 0
        Assert.Equal(3u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(4)));  // EV_NO_ACTION
        Assert.True(bytes.AsSpan(8, 20).IndexOfAnyExcept((byte)0) < 0);
        Assert.Equal(33u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(28)));
        Assert.Equal("Spec ID Event03\0", Encoding.ASCII.GetString(bytes, 32, 16));
        Assert.Equal(Convert.FromHexString("00000000" + "00" + "02" + "02" + "02" + "01000000" + "0b00" + "2000" + "00"), bytes[48..]);
    }

    [ToolsFact("tpm2_eventlog")]
    public void Tpm2_tools_reads_the_log_and_replays_it_to_the_same_pcr_values()
    {
        var log = Sample();
        string path = Path.Combine(dir, "log.bin");
        File.WriteAllBytes(path, log.ToBytes());
        string yaml = Prerequisites.Run("tpm2_eventlog", path);
        Assert.Contains("Spec ID Event03", yaml);
        Assert.Equal(log.Events.Count, yaml.Split('\n').Count(l => l.TrimStart().StartsWith("- EventNum:", StringComparison.Ordinal)) - 1);
        Assert.Equal(2, yaml.Split('\n').Count(l => l.Trim() == "PCRIndex: 12"));
        foreach (var (pcr, value) in log.Replay())
            Assert.Contains($"{pcr} : 0x{Convert.ToHexString(value)}", yaml.Replace("  ", " ", StringComparison.Ordinal), StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>A log as System Transparency's stboot (host/tpm.go) writes it: the Spec ID event lists SHA-1 and SHA-256,
    /// each event gives only a SHA-256 digest. Written here from the spec's layout, not copied.</summary>
    static byte[] StStyleLog(uint pcr, uint type, byte[] digest, byte[] data)
    {
        var b = new List<byte>();
        void U32(uint v) { var x = new byte[4]; BinaryPrimitives.WriteUInt32LittleEndian(x, v); b.AddRange(x); }
        void U16(ushort v) { var x = new byte[2]; BinaryPrimitives.WriteUInt16LittleEndian(x, v); b.AddRange(x); }
        U32(0); U32(3); b.AddRange(new byte[20]); U32(37);
        b.AddRange("Spec ID Event03\0"u8.ToArray());
        U32(0); b.AddRange(new byte[] { 0, 2, 2, 2 }); U32(2); U16(0x0004); U16(20); U16(0x000b); U16(32); b.Add(0);
        U32(pcr); U32(type); U32(1); U16(0x000b); b.AddRange(digest); U32((uint)data.Length); b.AddRange(data);
        return [.. b];
    }

    [Fact]
    public void A_log_that_lists_more_banks_is_read_by_its_sha256_digests()
    {
        byte[] digest = SHA256.HashData("x"u8);
        var read = EventLog.Parse(StStyleLog(13, 0xa0000002, digest, "x"u8.ToArray()));
        var e = Assert.Single(read.Events);
        Assert.Equal((13, StbootEvent.SecurityConfig), (e.Pcr, e.Type));
        Assert.Equal(digest, e.Sha256);
        Assert.Equal(Extend(new byte[32], digest), read.Replay()[13]);
    }

    [Theory]
    [InlineData("pcr 24", EventLogError.InvalidValue)]
    [InlineData("no digests", EventLogError.MissingDigest)]
    [InlineData("sha1 only", EventLogError.MissingDigest)]
    [InlineData("unlisted algorithm", EventLogError.UnsupportedAlgorithm)]
    [InlineData("data over the limit", EventLogError.TooLarge)]
    [InlineData("first event not spec id", EventLogError.NoSpecIdEvent)]
    [InlineData("empty", EventLogError.NoSpecIdEvent)]
    public void Malformed_logs_are_refused_with_a_reason(string @case, EventLogError error)
    {
        byte[] good = StStyleLog(12, 0xa0000000, new byte[32], "a"u8.ToArray());
        int eventAt = 32 + 37;
        byte[] bad = good.ToArray();
        switch (@case)
        {
            case "pcr 24": BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(eventAt), 24); break;
            case "no digests": BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(eventAt + 8), 0); break;
            case "sha1 only":
                bad = [.. good[..(eventAt + 12)], 0x04, 0x00, .. new byte[20], .. good[(eventAt + 14 + 32)..]];
                break;
            case "unlisted algorithm": BinaryPrimitives.WriteUInt16LittleEndian(bad.AsSpan(eventAt + 12), 0x000c); break;
            case "data over the limit": BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(eventAt + 14 + 32), EventLogLimits.MaxEventDataBytes + 1); break;
            case "first event not spec id": BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(4), 0x80000008); break;
            case "empty": bad = []; break;
        }
        Assert.Equal(error, Assert.Throws<EventLogException>(() => EventLog.Parse(bad)).Error);
    }

    [Fact]
    public void Every_truncation_is_refused_as_truncated_and_an_oversized_log_or_too_many_events_as_too_large()
    {
        var sample = Sample();
        byte[] bytes = sample.ToBytes();
        // Cut at an event's end, the rest is a complete, shorter log.
        var ends = Enumerable.Range(0, sample.Events.Count + 1).Select(n => EventLog.Of(sample.Events.Take(n)).ToBytes().Length).ToHashSet();
        for (int length = 1; length < bytes.Length; length++)
        {
            if (ends.Contains(length))
            {
                Assert.Equal(ends.Count(e => e < length), EventLog.Parse(bytes.AsSpan(0, length)).Events.Count);
                continue;
            }
            var error = Assert.Throws<EventLogException>(() => EventLog.Parse(bytes.AsSpan(0, length))).Error;
            Assert.True(error == EventLogError.Truncated, $"cut at {length}: {error}");
        }
        Assert.Equal(EventLogError.TooLarge, Assert.Throws<EventLogException>(() => EventLog.Parse(new byte[EventLogLimits.MaxLogBytes + 1])).Error);

        var one = MeasuredEvent.OfData(14, StbootEvent.UxIdentity, []);
        byte[] header = EventLog.Empty.ToBytes(), record = EventLog.Of([one]).ToBytes()[header.Length..];
        byte[] many = [.. header, .. Enumerable.Range(0, EventLogLimits.MaxEvents).SelectMany(_ => record)];
        Assert.Equal(EventLogError.TooLarge, Assert.Throws<EventLogException>(() => EventLog.Parse(many)).Error);
        Assert.Throws<InvalidOperationException>(() => EventLog.Of(Enumerable.Repeat(one, EventLogLimits.MaxEvents)));
    }

    [Fact]
    public void Random_and_mutated_bytes_give_a_log_or_an_event_log_exception_and_nothing_else()
    {
        byte[] seed = Sample().ToBytes();
        Gen.Select(Gen.Int[0, seed.Length - 1], Gen.Byte, Gen.Int[0, seed.Length]).Sample((at, value, cut) =>
        {
            byte[] input = seed.ToArray();
            input[at] = value;
            Check(input.AsSpan(0, cut).ToArray());
        }, iter: 5000);
        Gen.Byte.Array[0, 300].Sample(Check, iter: 2000);

        static void Check(byte[] input)
        {
            try
            {
                var log = EventLog.Parse(input);
                Assert.Equal(log.Events, EventLog.Parse(log.ToBytes()).Events);
            }
            catch (EventLogException) { }
        }
    }
}
