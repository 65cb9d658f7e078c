using System.Buffers.Binary;
using System.Security.Cryptography;

namespace Tabula.Tpm.Measurements;

/// <summary>
/// A TCG crypto-agile event log (TCG PC Client Platform Firmware Profile 1.05, §10: a TCG_PCClientPCREvent carrying the
/// TCG_EfiSpecIDEvent "Spec ID Event03", then TCG_PCR_EVENT2 records, all little-endian), the one owner of the format:
/// stboot writes it, the relay appends to it, the controller and a customer's <c>relay attest</c> read and replay it.
/// <para>
/// Written: the Spec ID event lists one bank, SHA-256 (stboot measures into the SHA-256 bank only), and every event
/// carries one SHA-256 digest: exactly the digest extended into the PCR. (ST's stboot listed SHA-1 too while giving only
/// SHA-256 digests, and extended SHA-256 of the logged digest, so its logs never replayed; docs/boot.md.)
/// Read: any crypto-agile log whose header lists SHA-256; digests of the other listed banks are skipped, an event
/// without a SHA-256 digest is refused; every bound is in <see cref="EventLogLimits"/>, every refusal an
/// <see cref="EventLogException"/>.
/// </para>
/// </summary>
public sealed class EventLog
{
    /// <summary>PCRs of a PC Client TPM (0–23).</summary>
    public const int PcrCount = 24;

    /// <summary>TPM_ALG_SHA256.</summary>
    public const ushort AlgSha256 = 0x000b;

    const int Sha1Size = 20;
    static ReadOnlySpan<byte> SpecIdSignature => "Spec ID Event03\0"u8;

    EventLog(IReadOnlyList<MeasuredEvent> events) => Events = events;

    /// <summary>An empty log (the header only).</summary>
    public static EventLog Empty { get; } = new([]);

    /// <summary>The measurements, in order (the Spec ID header is not one of them).</summary>
    public IReadOnlyList<MeasuredEvent> Events { get; }

    /// <summary>This log with <paramref name="measured"/> at the end.</summary>
    public EventLog Append(MeasuredEvent measured)
    {
        ArgumentNullException.ThrowIfNull(measured);
        if (Events.Count + 1 >= EventLogLimits.MaxEvents)
            throw new InvalidOperationException($"an event log holds at most {EventLogLimits.MaxEvents} events");
        return new EventLog([.. Events, measured]);
    }

    /// <summary>A log of <paramref name="events"/>.</summary>
    public static EventLog Of(IEnumerable<MeasuredEvent> events) =>
        events.Aggregate(Empty, (log, e) => log.Append(e));

    /// <summary>
    /// The SHA-256 bank after replaying the log from reset: for each PCR that has events, starting from 32 zero bytes,
    /// value = SHA-256(value ‖ digest) per event in order (what TPM2_PCR_Extend does). EV_NO_ACTION events are not
    /// extended. PCRs without events are absent.
    /// </summary>
    public IReadOnlyDictionary<int, byte[]> Replay()
    {
        var pcrs = new SortedDictionary<int, byte[]>();
        Span<byte> both = stackalloc byte[2 * SHA256.HashSizeInBytes];
        foreach (var e in Events)
        {
            if (e.Type == StbootEvent.NoAction)
                continue;
            byte[] value = pcrs.TryGetValue(e.Pcr, out var current) ? current : new byte[SHA256.HashSizeInBytes];
            value.CopyTo(both);
            e.Sha256.CopyTo(both[SHA256.HashSizeInBytes..]);
            pcrs[e.Pcr] = SHA256.HashData(both);
        }
        return pcrs;
    }

    /// <summary>The log's bytes: the Spec ID event (SHA-256 only), then each event.</summary>
    public byte[] ToBytes()
    {
        int size = HeaderBytes + Events.Sum(e => 4 + 4 + 4 + 2 + SHA256.HashSizeInBytes + 4 + e.Data.Length);
        var bytes = new byte[size];
        var span = bytes.AsSpan();
        int at = WriteHeader(span);
        foreach (var e in Events)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(span[at..], (uint)e.Pcr);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 4)..], (uint)e.Type);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 8)..], 1);
            BinaryPrimitives.WriteUInt16LittleEndian(span[(at + 12)..], AlgSha256);
            e.Sha256.CopyTo(span[(at + 14)..]);
            BinaryPrimitives.WriteUInt32LittleEndian(span[(at + 14 + SHA256.HashSizeInBytes)..], (uint)e.Data.Length);
            e.Data.CopyTo(span[(at + 18 + SHA256.HashSizeInBytes)..]);
            at += 18 + SHA256.HashSizeInBytes + e.Data.Length;
        }
        return bytes;
    }

    // TCG_PCClientPCREvent (pcr, type, SHA-1-sized digest, size) + TCG_EfiSpecIDEvent with one algorithm.
    const int SpecIdBytes = 16 + 4 + 1 + 1 + 1 + 1 + 4 + 4 + 1;
    const int HeaderBytes = 4 + 4 + Sha1Size + 4 + SpecIdBytes;

    static int WriteHeader(Span<byte> span)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(span, 0);                                 // PCR 0
        BinaryPrimitives.WriteUInt32LittleEndian(span[4..], (uint)StbootEvent.NoAction);
        span.Slice(8, Sha1Size).Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(span[(8 + Sha1Size)..], SpecIdBytes);
        var spec = span.Slice(12 + Sha1Size, SpecIdBytes);
        SpecIdSignature.CopyTo(spec);
        BinaryPrimitives.WriteUInt32LittleEndian(spec[16..], 0);                           // platformClass: client
        spec[20] = 0;                                                                      // specVersionMinor
        spec[21] = 2;                                                                      // specVersionMajor
        spec[22] = 2;                                                                      // specErrata (as ST writes it)
        spec[23] = 2;                                                                      // uintnSize: UINT64
        BinaryPrimitives.WriteUInt32LittleEndian(spec[24..], 1);                           // numberOfAlgorithms
        BinaryPrimitives.WriteUInt16LittleEndian(spec[28..], AlgSha256);
        BinaryPrimitives.WriteUInt16LittleEndian(spec[30..], SHA256.HashSizeInBytes);
        spec[32] = 0;                                                                      // vendorInfoSize
        return HeaderBytes;
    }

    /// <summary>Reads a log; refuses what is not one with an <see cref="EventLogException"/>.</summary>
    public static EventLog Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > EventLogLimits.MaxLogBytes)
            EventLogException.Throw(EventLogError.TooLarge, $"event log is {bytes.Length} bytes, over the limit of {EventLogLimits.MaxLogBytes}");
        var reader = new Reader(bytes);
        var algorithms = ReadSpecId(ref reader);
        var events = new List<MeasuredEvent>();
        Span<bool> seen = stackalloc bool[algorithms.Count];
        while (!reader.AtEnd)
        {
            int index = events.Count + 1, offset = reader.Offset;
            if (index >= EventLogLimits.MaxEvents)
                EventLogException.Throw(EventLogError.TooLarge, $"event log has more than {EventLogLimits.MaxEvents} events");
            string where = $"event {index} at offset {offset}";
            uint pcr = reader.U32(where);
            if (pcr >= PcrCount)
                EventLogException.Throw(EventLogError.InvalidValue, $"{where}: PCR {pcr} is not 0-{PcrCount - 1}");
            uint type = reader.U32(where);
            uint count = reader.U32(where);
            if (count == 0 || count > algorithms.Count)
                EventLogException.Throw(count == 0 ? EventLogError.MissingDigest : EventLogError.InvalidValue,
                    $"{where}: {count} digests for {algorithms.Count} banks");
            ReadOnlySpan<byte> sha256 = default;
            bool haveSha256 = false;
            seen.Clear();
            for (int d = 0; d < count; d++)
            {
                ushort alg = reader.U16(where);
                int bank = algorithms.FindIndex(a => a.Id == alg);
                if (bank < 0)
                    EventLogException.Throw(EventLogError.UnsupportedAlgorithm, $"{where}: digest of algorithm 0x{alg:x4}, not listed in the Spec ID event");
                if (seen[bank])
                    EventLogException.Throw(EventLogError.MissingDigest, $"{where}: two digests of algorithm 0x{alg:x4}");
                seen[bank] = true;
                var digest = reader.Bytes(algorithms[bank].Size, where);
                if (alg == AlgSha256)
                {
                    sha256 = digest;
                    haveSha256 = true;
                }
            }
            if (!haveSha256)
                EventLogException.Throw(EventLogError.MissingDigest, $"{where}: no SHA-256 digest");
            uint size = reader.U32(where);
            if (size > EventLogLimits.MaxEventDataBytes)
                EventLogException.Throw(EventLogError.TooLarge, $"{where}: {size} bytes of data, over the limit of {EventLogLimits.MaxEventDataBytes}");
            var data = reader.Bytes((int)size, where);
            events.Add(new MeasuredEvent((int)pcr, (StbootEvent)type, sha256, data));
        }
        return new EventLog(events);
    }

    readonly record struct Algorithm(ushort Id, int Size);

    static List<Algorithm> ReadSpecId(ref Reader reader)
    {
        const string where = "Spec ID event";
        if (reader.Remaining < 4 + 4 + Sha1Size + 4)
            EventLogException.Throw(reader.Remaining == 0 ? EventLogError.NoSpecIdEvent : EventLogError.Truncated, $"{where}: the log has {reader.Remaining} bytes");
        uint pcr = reader.U32(where), type = reader.U32(where);
        var digest = reader.Bytes(Sha1Size, where);
        if (pcr != 0 || type != (uint)StbootEvent.NoAction || digest.IndexOfAnyExcept((byte)0) >= 0)
            EventLogException.Throw(EventLogError.NoSpecIdEvent, $"{where}: the first event is PCR {pcr} type 0x{type:x8}, not an EV_NO_ACTION in PCR 0 with a zero digest");
        uint size = reader.U32(where);
        if (size > 16 + 4 + 4 + 4 + EventLogLimits.MaxAlgorithms * 4 + 1 + EventLogLimits.MaxVendorInfoBytes)
            EventLogException.Throw(EventLogError.TooLarge, $"{where}: {size} bytes");
        var spec = new Reader(reader.Bytes((int)size, where));
        if (spec.Remaining < 16 || !spec.Bytes(16, where).SequenceEqual(SpecIdSignature))
            EventLogException.Throw(EventLogError.NoSpecIdEvent, $"{where}: no \"Spec ID Event03\" signature (a SHA-1 log of TPM 1.2 is not read)");
        spec.U32(where);                                   // platformClass
        spec.Bytes(1, where);                              // specVersionMinor
        byte major = spec.Bytes(1, where)[0];
        spec.Bytes(1, where);                              // specErrata
        byte uintn = spec.Bytes(1, where)[0];
        if (major != 2 || uintn is not (1 or 2))
            EventLogException.Throw(EventLogError.InvalidValue, $"{where}: spec version major {major}, uintnSize {uintn}");
        uint count = spec.U32(where);
        if (count == 0 || count > EventLogLimits.MaxAlgorithms)
            EventLogException.Throw(EventLogError.UnsupportedAlgorithm, $"{where}: {count} algorithms");
        var algorithms = new List<Algorithm>((int)count);
        for (int i = 0; i < count; i++)
        {
            ushort id = spec.U16(where), digestSize = spec.U16(where);
            if (digestSize == 0 || digestSize > EventLogLimits.MaxDigestBytes || (id == AlgSha256 && digestSize != SHA256.HashSizeInBytes)
                || algorithms.Exists(a => a.Id == id))
                EventLogException.Throw(EventLogError.UnsupportedAlgorithm, $"{where}: algorithm 0x{id:x4} with {digestSize}-byte digests");
            algorithms.Add(new Algorithm(id, digestSize));
        }
        if (!algorithms.Exists(a => a.Id == AlgSha256))
            EventLogException.Throw(EventLogError.UnsupportedAlgorithm, $"{where}: no SHA-256 bank");
        int vendor = spec.Bytes(1, where)[0];
        spec.Bytes(vendor, where);
        if (!spec.AtEnd)
            EventLogException.Throw(EventLogError.InvalidValue, $"{where}: {spec.Remaining} bytes after the vendor info");
        return algorithms;
    }

    ref struct Reader(ReadOnlySpan<byte> bytes)
    {
        readonly ReadOnlySpan<byte> bytes = bytes;
        int at;

        public readonly int Offset => at;
        public readonly int Remaining => bytes.Length - at;
        public readonly bool AtEnd => at == bytes.Length;

        public ReadOnlySpan<byte> Bytes(int count, string where)
        {
            if (count < 0 || count > Remaining)
                EventLogException.Throw(EventLogError.Truncated, $"{where}: needs {count} bytes at offset {at}, {Remaining} left");
            var slice = bytes.Slice(at, count);
            at += count;
            return slice;
        }

        public uint U32(string where) => BinaryPrimitives.ReadUInt32LittleEndian(Bytes(4, where));
        public ushort U16(string where) => BinaryPrimitives.ReadUInt16LittleEndian(Bytes(2, where));
    }
}
