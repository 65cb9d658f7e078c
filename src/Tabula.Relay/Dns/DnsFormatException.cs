using System.Diagnostics.CodeAnalysis;

namespace Tabula.Relay.Dns;

/// <summary>Why a DNS message was rejected.</summary>
public enum DnsFormatError
{
    /// <summary>Shorter than the 12-byte header: there is no id to answer to.</summary>
    TooShort,
    /// <summary>Longer than the limit for where it came from (<see cref="DnsLimits"/>).</summary>
    TooLong,
    /// <summary>A section, name, record or option runs past the end of the message (or a count promises more than is there).</summary>
    Truncated,
    /// <summary>A label is longer than 63 bytes, or uses the reserved 0x40/0x80 label types.</summary>
    BadLabel,
    /// <summary>A name is longer than 255 bytes once expanded.</summary>
    NameTooLong,
    /// <summary>A compression pointer does not point strictly backwards (a loop, or a forward jump), or points into the header.</summary>
    BadPointer,
    /// <summary>More records than <see cref="DnsLimits.MaxRecords"/>.</summary>
    TooManyRecords,
    /// <summary>A query with QR set, or a response without it.</summary>
    WrongDirection,
    /// <summary>An opcode other than QUERY.</summary>
    UnsupportedOpcode,
    /// <summary>A query whose counts are not one question, no answer or authority, and at most an OPT record.</summary>
    BadCounts,
    /// <summary>An OPT record that is not at the root, is repeated, or sits outside the additional section.</summary>
    BadOpt,
    /// <summary>A response whose id or question is not the one that was asked.</summary>
    Mismatch,
    /// <summary>Bytes after the last record of a query.</summary>
    TrailingBytes,
}

/// <summary>
/// A DNS message that cannot be used. The message is built from the reason and an offset only: the name and
/// address bytes of the message never reach it, so the exception text can be printed anywhere.
/// </summary>
public sealed class DnsFormatException : Exception
{
    DnsFormatException(DnsFormatError reason, int offset)
        : base($"DNS message rejected: {reason} at byte {offset}") => (Reason, Offset) = (reason, offset);

    public DnsFormatError Reason { get; }

    /// <summary>Where in the message the problem was found.</summary>
    public int Offset { get; }

    [DoesNotReturn]
    internal static void Throw(DnsFormatError reason, int offset) => throw new DnsFormatException(reason, offset);
}
