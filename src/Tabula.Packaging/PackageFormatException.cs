using System.Diagnostics.CodeAnalysis;

namespace Tabula.Packaging;

/// <summary>What made an input unusable. One member per kind of bad input.</summary>
public enum FormatError
{
    /// <summary>The input is larger than its limit in <see cref="Limits"/>.</summary>
    TooLarge,
    /// <summary>Not well-formed JSON, or JSON nested too deep.</summary>
    InvalidJson,
    /// <summary>A JSON field is missing, null where required, of the wrong type, or out of range.</summary>
    InvalidField,
    /// <summary>A descriptor or manifest version other than 1.</summary>
    UnsupportedVersion,
    /// <summary>Descriptor arrays of different lengths, or too many entries.</summary>
    MismatchedSignatures,
    /// <summary>Not valid PEM, or no block of the expected type.</summary>
    InvalidPem,
    /// <summary>DER that does not parse as the expected ASN.1 structure.</summary>
    InvalidDer,
    /// <summary>Not a zip archive, or a damaged or truncated one.</summary>
    InvalidArchive,
    /// <summary>A zip entry whose name escapes the archive (.., absolute path, backslash, NUL), or a cpio path that is
    /// empty or has empty, "." or ".." parts.</summary>
    UnsafeEntryName,
    /// <summary>Two zip or cpio entries with the same name, or a cpio file where a directory is implied.</summary>
    DuplicateEntry,
    /// <summary>A zip entry that expands beyond the size or ratio limits.</summary>
    ZipBomb,
    /// <summary>An entry the manifest names is absent or empty.</summary>
    MissingEntry,
    /// <summary>A key that is not Ed25519, or not in the expected encoding.</summary>
    InvalidKey,
    /// <summary>A Sigsum proof or policy that does not follow its line format.</summary>
    InvalidSigsum,
    /// <summary>Invalid base64.</summary>
    InvalidBase64,
}

/// <summary>
/// Bad input to a Tabula.Packaging parser. The message is one line that names what failed
/// (the field, the entry, the limit); <see cref="Error"/> says what kind of failure it is.
/// Expected refusals (a bad signature, an untrusted signer) are not exceptions: see <see cref="VerifyResult"/>.
/// </summary>
public sealed class PackageFormatException : Exception
{
    /// <summary>The kind of bad input.</summary>
    public FormatError Error { get; }

    internal PackageFormatException(FormatError error, string message, Exception? inner = null)
        : base(message, inner) => Error = error;

    /// <summary>The same error with <paramref name="context"/> (a file name, say) in front of the message.</summary>
    public PackageFormatException WithContext(string context) => new(Error, $"{context}: {Message}", this);

    [DoesNotReturn]
    internal static void Throw(FormatError error, string message, Exception? inner = null) =>
        throw new PackageFormatException(error, message, inner);

    [DoesNotReturn]
    internal static T Throw<T>(FormatError error, string message, Exception? inner = null) =>
        throw new PackageFormatException(error, message, inner);

    internal static void ThrowIfTooLarge(long length, long limit, string what)
    {
        if (length > limit)
            Throw(FormatError.TooLarge, $"{what} is {length} bytes, over the limit of {limit} bytes");
    }
}
