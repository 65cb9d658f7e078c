using System.Security.Cryptography;

namespace Tabula.Tpm.Measurements;

/// <summary>
/// One TCG_PCR_EVENT2 as stboot and the relay write it: a PCR, a type, the SHA-256 digest that was extended into that
/// PCR's SHA-256 bank, and the data it describes. For most events the digest is SHA-256 of the data, so a verifier can
/// check the data; for <see cref="StbootEvent.OspkgArchive"/> the data is a name and the digest is the archive's.
/// </summary>
public sealed record MeasuredEvent
{
    /// <summary>An event; <paramref name="sha256"/> must be 32 bytes and the PCR 0–23.</summary>
    public MeasuredEvent(int pcr, StbootEvent type, ReadOnlySpan<byte> sha256, ReadOnlySpan<byte> data)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(pcr);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(pcr, EventLog.PcrCount);
        if (sha256.Length != SHA256.HashSizeInBytes)
            throw new ArgumentException("a SHA-256 digest is 32 bytes", nameof(sha256));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(data.Length, EventLogLimits.MaxEventDataBytes, nameof(data));
        Pcr = pcr;
        Type = type;
        Sha256 = sha256.ToArray();
        Data = data.ToArray();
    }

    /// <summary>An event whose digest is SHA-256 of <paramref name="data"/>.</summary>
    public static MeasuredEvent OfData(int pcr, StbootEvent type, ReadOnlySpan<byte> data) =>
        new(pcr, type, SHA256.HashData(data), data);

    /// <summary>The PCR extended.</summary>
    public int Pcr { get; }

    /// <summary>The event type (may be a value this enum does not name, from another writer).</summary>
    public StbootEvent Type { get; }

    /// <summary>The SHA-256 digest extended (32 bytes).</summary>
    public byte[] Sha256 { get; }

    /// <summary>The event data.</summary>
    public byte[] Data { get; }

    /// <summary>True when the digest is SHA-256 of the data (every event but the archive's).</summary>
    public bool DigestIsOfData => SHA256.HashData(Data).AsSpan().SequenceEqual(Sha256);

    /// <summary>Value equality over the bytes.</summary>
    public bool Equals(MeasuredEvent? other) =>
        other is not null && Pcr == other.Pcr && Type == other.Type && Sha256.AsSpan().SequenceEqual(other.Sha256)
        && Data.AsSpan().SequenceEqual(other.Data);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Pcr, Type, Convert.ToHexString(Sha256));
}
