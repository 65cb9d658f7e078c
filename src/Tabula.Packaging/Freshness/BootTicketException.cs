using System.Diagnostics.CodeAnalysis;

namespace Tabula.Packaging;

/// <summary>Why a boot ticket or a ticket request was refused.</summary>
public enum TicketError
{
    /// <summary>Over <see cref="Limits.MaxBootTicketBytes"/> / <see cref="Limits.MaxTicketRequestBytes"/>.</summary>
    TooLarge,
    /// <summary>Not the documented JSON: bad JSON, a missing or mistyped field, bad base64, a value out of range.</summary>
    Malformed,
    /// <summary>A payload version other than 1.</summary>
    UnsupportedVersion,
    /// <summary>The signature does not verify with the expected key (an unknown key, or tampered bytes).</summary>
    BadSignature,
}

/// <summary>
/// A boot ticket or ticket request that cannot be used. The message names the field and never holds a key or a nonce;
/// <see cref="Reason"/> says what kind of failure it is.
/// </summary>
public sealed class BootTicketException : Exception
{
    /// <summary>What was wrong.</summary>
    public TicketError Reason { get; }

    /// <summary>A refusal of kind <paramref name="reason"/>.</summary>
    public BootTicketException(TicketError reason, string message, Exception? inner = null) : base(message, inner) => Reason = reason;

    [DoesNotReturn]
    internal static T Throw<T>(TicketError reason, string message, Exception? inner = null) =>
        throw new BootTicketException(reason, message, inner);

    /// <summary>A <see cref="JsonFields"/> refusal as this type.</summary>
    internal static BootTicketException From(PackageFormatException e) => new(e.Error switch
    {
        FormatError.TooLarge => TicketError.TooLarge,
        FormatError.UnsupportedVersion => TicketError.UnsupportedVersion,
        _ => TicketError.Malformed,
    }, e.Message, e);

    /// <summary>Strict base64 of exactly <paramref name="length"/> bytes (or at most <paramref name="length"/> when
    /// <paramref name="exact"/> is false).</summary>
    internal static byte[] Base64(string text, int length, string what, bool exact = true)
    {
        int max = (length + 2) / 3 * 4;
        if (text.Length > max || text.Length % 4 != 0)
            return Throw<byte[]>(TicketError.Malformed, $"{what} must be base64 of {(exact ? "" : "at most ")}{length} bytes");
        var bytes = new byte[length];
        if (!Convert.TryFromBase64String(text, bytes, out int written) || (exact ? written != length : written == 0))
            return Throw<byte[]>(TicketError.Malformed, $"{what} must be base64 of {(exact ? "" : "at most ")}{length} bytes");
        return exact ? bytes : bytes[..written];
    }
}
