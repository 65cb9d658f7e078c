using System.Diagnostics.CodeAnalysis;

namespace Tabula.Tpm.Measurements;

/// <summary>What made bytes unusable as an event log.</summary>
public enum EventLogError
{
    /// <summary>The log, an event's data, or the number of events is over its bound in <see cref="EventLogLimits"/>.</summary>
    TooLarge,
    /// <summary>The input ended inside an event.</summary>
    Truncated,
    /// <summary>The first event is not a TCG Spec ID event ("Spec ID Event03", EV_NO_ACTION in PCR 0, 2.0 crypto-agile).</summary>
    NoSpecIdEvent,
    /// <summary>The Spec ID event lists no SHA-256 bank, lists an algorithm twice, or gives SHA-256 another size; or an
    /// event's digest is of an algorithm the header did not list.</summary>
    UnsupportedAlgorithm,
    /// <summary>An event without a SHA-256 digest, or with the same algorithm twice.</summary>
    MissingDigest,
    /// <summary>A PCR index outside 0–23, or a field outside its range.</summary>
    InvalidValue,
}

/// <summary>Bytes that are not a TCG crypto-agile event log this reader accepts; <see cref="Error"/> says why and the
/// message names the event (its index and offset).</summary>
public sealed class EventLogException : Exception
{
    internal EventLogException(EventLogError error, string message) : base(message) => Error = error;

    /// <summary>The kind of bad input.</summary>
    public EventLogError Error { get; }

    [DoesNotReturn]
    internal static void Throw(EventLogError error, string message) => throw new EventLogException(error, message);
}

/// <summary>Bounds of the event log reader and writer.</summary>
public static class EventLogLimits
{
    /// <summary>One event's data. The largest stboot measures is the descriptor, whose own limit is 1 MiB
    /// (Tabula.Packaging Limits.MaxDescriptorBytes).</summary>
    public const int MaxEventDataBytes = 1 << 20;

    /// <summary>The whole log: stboot writes about ten events, the relay one more.</summary>
    public const int MaxLogBytes = 4 << 20;

    /// <summary>Events in one log, the Spec ID event included.</summary>
    public const int MaxEvents = 1024;

    /// <summary>Algorithms in the Spec ID event (TPM_ALG_ID values are 16-bit; real TPMs have at most five banks).</summary>
    public const int MaxAlgorithms = 16;

    /// <summary>Largest digest of any listed algorithm (SHA-512 is 64 bytes).</summary>
    public const int MaxDigestBytes = 64;

    /// <summary>The Spec ID event's vendor info (a byte-sized length).</summary>
    public const int MaxVendorInfoBytes = 255;
}
