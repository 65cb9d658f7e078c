using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.Attestation;

/// <summary>One SHA-256 measurement of a TCG crypto-agile event log: PCR, event type, digest extended, event data.</summary>
public sealed record LoggedEvent(int Pcr, uint Type, byte[] Sha256, byte[] Data);

/// <summary>
/// The verifier's reading of the TCG crypto-agile event log (TCG PC Client PFP 10.2: a SHA-1-format Spec ID header event,
/// then TCG_PCR_EVENT2 records, little-endian) that stboot writes and the relay extends: the SHA-256 digests only (other
/// banks are skipped by their sizes from the header), and the replay of those digests to PCR values. Bounded: see
/// <see cref="MaxBytes"/>, <see cref="MaxEvents"/>.
/// </summary>
/// <remarks>The event types are System Transparency's and Tabula's (docs/boot.md "Measured boot"); the writer is stboot's.
/// This reader exists for verifiers, which must not trust a relay's log before it replays to the quoted PCRs.</remarks>
public sealed class MeasurementLog
{
    /// <summary>Largest log accepted.</summary>
    public const int MaxBytes = 1 << 20;
    /// <summary>Most events accepted.</summary>
    public const int MaxEvents = 1024;

    /// <summary>ST's and Tabula's event types (stboot host/tpm.go; 0xa00001xx Tabula's own).</summary>
    public const uint OspkgArchive = 0xa0000000, OspkgDescriptor = 0xa0000001, SecurityConfig = 0xa0000002, SigningRoot = 0xa0000003,
        HttpsRoot = 0xa0000004, UxIdentity = 0xa0000005, TicketRoot = 0xa0000100, HostConfig = 0xa0000101, BootTicket = 0xa0000102,
        WireGuardKey = 0xa0000103;

    const ushort AlgSha256 = 0x000B;

    MeasurementLog(IReadOnlyList<LoggedEvent> events) => Events = events;

    /// <summary>The SHA-256 events in log order (the Spec ID header and EV_NO_ACTION events are not measurements and are left out).</summary>
    public IReadOnlyList<LoggedEvent> Events { get; }

    /// <summary>What the log's events extend PCR <paramref name="pcr"/>'s SHA-256 bank to, from zero.</summary>
    public byte[] Replay(int pcr)
    {
        byte[] value = new byte[32];
        foreach (var e in Events.Where(e => e.Pcr == pcr)) value = SHA256.HashData([.. value, .. e.Sha256]);
        return value;
    }

    /// <summary>Reads a log; a malformed one is a <see cref="Tpm.TpmFormatException"/> naming where.</summary>
    public static MeasurementLog Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > MaxBytes) throw new Tpm.TpmFormatException($"event log: {bytes.Length} bytes, at most {MaxBytes}");
        var r = new LittleEndian(bytes);
        // Header: TCG_PCClientPCREvent with a SHA-1 digest field, eventType EV_NO_ACTION, data the Spec ID Event03.
        r.U32("header pcrIndex");
        if (r.U32("header eventType") != 3) throw new Tpm.TpmFormatException("event log: the first event is not EV_NO_ACTION (Spec ID)");
        r.Take(20, "header digest");
        var spec = new LittleEndian(r.Take((int)Math.Min(r.U32("header eventSize"), int.MaxValue), "header event"));
        if (!spec.Take(16, "Spec ID signature").SequenceEqual("Spec ID Event03\0"u8))
            throw new Tpm.TpmFormatException("event log: not a crypto-agile log (Spec ID Event03)");
        spec.Take(4 + 1 + 1 + 1 + 1, "Spec ID versions");
        uint algorithms = spec.U32("numberOfAlgorithms");
        if (algorithms is 0 or > 8) throw new Tpm.TpmFormatException($"event log: {algorithms} digest algorithms");
        var sizes = new Dictionary<ushort, ushort>();
        for (int i = 0; i < algorithms; i++)
        {
            ushort alg = spec.U16("algorithmId");
            ushort size = spec.U16("digestSize");
            if (size > 64) throw new Tpm.TpmFormatException($"event log: a {size}-byte digest");
            sizes[alg] = size;
        }
        if (!sizes.TryGetValue(AlgSha256, out ushort sha256Size) || sha256Size != 32)
            throw new Tpm.TpmFormatException("event log: no SHA-256 bank");
        var events = new List<LoggedEvent>();
        while (!r.AtEnd)
        {
            if (events.Count >= MaxEvents) throw new Tpm.TpmFormatException($"event log: more than {MaxEvents} events");
            uint pcr = r.U32("pcrIndex");
            uint type = r.U32("eventType");
            if (pcr >= 24) throw new Tpm.TpmFormatException($"event log: PCR {pcr}");
            uint count = r.U32("digests.count");
            if (count > algorithms) throw new Tpm.TpmFormatException($"event log: {count} digests in an event");
            byte[]? sha256 = null;
            for (int i = 0; i < count; i++)
            {
                ushort alg = r.U16("digest algorithmId");
                if (!sizes.TryGetValue(alg, out ushort size)) throw new Tpm.TpmFormatException($"event log: digest algorithm 0x{alg:x4} not in the header");
                var digest = r.Take(size, "digest");
                if (alg == AlgSha256) sha256 = digest.ToArray();
            }
            uint dataSize = r.U32("eventSize");
            byte[] data = r.Take(dataSize > int.MaxValue ? -1 : (int)dataSize, "event data").ToArray();
            if (type == 3) continue;   // EV_NO_ACTION: informational, never extended
            if (sha256 is null) throw new Tpm.TpmFormatException("event log: an event without a SHA-256 digest");
            events.Add(new LoggedEvent((int)pcr, type, sha256, data));
        }
        return new MeasurementLog(events);
    }

    ref struct LittleEndian(ReadOnlySpan<byte> bytes)
    {
        readonly ReadOnlySpan<byte> bytes = bytes;
        int at;

        public readonly bool AtEnd => at == bytes.Length;

        public ReadOnlySpan<byte> Take(int count, string field)
        {
            if (count < 0 || count > bytes.Length - at)
                throw new Tpm.TpmFormatException($"event log: truncated at {field} (offset {at})");
            var slice = bytes.Slice(at, count);
            at += count;
            return slice;
        }

        public uint U32(string field) => BinaryPrimitives.ReadUInt32LittleEndian(Take(4, field));
        public ushort U16(string field) => BinaryPrimitives.ReadUInt16LittleEndian(Take(2, field));
    }
}
