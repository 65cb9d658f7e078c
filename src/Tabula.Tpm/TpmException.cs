using System.Diagnostics.CodeAnalysis;

namespace Tabula.Tpm;

/// <summary>
/// Base of everything this library throws about a TPM: <see cref="TpmErrorException"/> (the TPM answered with an
/// error code), <see cref="TpmFormatException"/> (bytes that are not a valid structure) and
/// <see cref="TpmTransportException"/> (the bytes did not get there or back).
/// </summary>
public abstract class TpmException : Exception
{
    private protected TpmException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>The TPM refused or failed a command; <see cref="Code"/> says why, decoded.</summary>
public sealed class TpmErrorException : TpmException
{
    /// <summary>Creates the exception for <paramref name="command"/> answered with <paramref name="code"/>.</summary>
    public TpmErrorException(TpmCommandCode command, TpmResponseCode code)
        : base($"TPM2_{command}: {code}")
    {
        Command = command;
        Code = code;
    }

    /// <summary>The command that failed.</summary>
    public TpmCommandCode Command { get; }

    /// <summary>The response code, decoded.</summary>
    public TpmResponseCode Code { get; }
}

/// <summary>What was wrong with bytes that should have been a TPM structure.</summary>
public enum TpmFormatError
{
    /// <summary>The input ended inside a field.</summary>
    Truncated,
    /// <summary>Bytes were left over after the structure (or a size field promised less than was there).</summary>
    TrailingBytes,
    /// <summary>A size or count is larger than this library accepts (<see cref="TpmLimits"/>) or than the field allows.</summary>
    TooLarge,
    /// <summary>A size field disagrees with the structure or message it sizes.</summary>
    SizeMismatch,
    /// <summary>A tag (TPM_ST) that is not the one this structure has.</summary>
    UnexpectedTag,
    /// <summary>An algorithm, scheme or type this library does not handle there.</summary>
    UnsupportedAlgorithm,
    /// <summary>A value outside its field's range (a PCR index, a flag, a magic number).</summary>
    InvalidValue,
    /// <summary>A command this library was asked to build would exceed <see cref="TpmLimits.MaxMessageBytes"/>.</summary>
    CommandTooLarge,
}

/// <summary>Bytes from a TPM (or from a peer, for the verifier side) that do not parse.</summary>
public sealed class TpmFormatException : TpmException
{
    /// <summary>Creates the exception: <paramref name="what"/> names the structure and field.</summary>
    public TpmFormatException(TpmFormatError error, string what)
        : base($"{what}: {error}")
    {
        Error = error;
        What = what;
    }

    /// <summary>What was wrong.</summary>
    public TpmFormatError Error { get; }

    /// <summary>The structure and field, e.g. <c>TPML_DIGEST.count</c>.</summary>
    public string What { get; }

    [DoesNotReturn]
    internal static void Throw(TpmFormatError error, string what) => throw new TpmFormatException(error, what);
}

/// <summary>The command or response did not make it through the transport (device or socket).</summary>
public sealed class TpmTransportException : TpmException
{
    /// <summary>Creates the exception; <paramref name="inner"/> is the I/O error, when there was one.</summary>
    public TpmTransportException(string message, Exception? inner = null) : base(message, inner) { }
}
