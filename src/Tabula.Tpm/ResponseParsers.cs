namespace Tabula.Tpm;

/// <summary>
/// Every response this library reads, by command: the frame (handles and sessions the command has) and then the
/// command's own parameter parser. The tests and the fuzz target run hostile bytes through exactly the code
/// <see cref="Tpm2"/> runs.
/// </summary>
internal static class ResponseParsers
{
    /// <summary>The handles a command returns and the sessions it is sent with, as <see cref="Tpm2"/> sends it.</summary>
    public static (int Handles, int Sessions) Shape(TpmCommandCode command) => command switch
    {
        TpmCommandCode.Startup or TpmCommandCode.PcrRead or TpmCommandCode.ReadPublic or TpmCommandCode.FlushContext
            or TpmCommandCode.NvReadPublic => (0, 0),
        TpmCommandCode.StartAuthSession => (1, 0),
        TpmCommandCode.CreatePrimary or TpmCommandCode.Load => (1, 1),
        TpmCommandCode.PcrExtend or TpmCommandCode.Create or TpmCommandCode.NvRead or TpmCommandCode.Quote
            or TpmCommandCode.PolicySecret => (0, 1),
        TpmCommandCode.ActivateCredential => (0, 2),
        _ => throw new ArgumentOutOfRangeException(nameof(command), command, "not a command this library sends"),
    };

    /// <summary>The commands <see cref="Parse"/> knows.</summary>
    public static readonly TpmCommandCode[] Commands =
    [
        TpmCommandCode.Startup, TpmCommandCode.PcrRead, TpmCommandCode.PcrExtend, TpmCommandCode.ReadPublic,
        TpmCommandCode.FlushContext, TpmCommandCode.NvReadPublic, TpmCommandCode.NvRead, TpmCommandCode.StartAuthSession,
        TpmCommandCode.CreatePrimary, TpmCommandCode.Create, TpmCommandCode.Load, TpmCommandCode.Quote,
        TpmCommandCode.PolicySecret, TpmCommandCode.ActivateCredential,
    ];

    /// <summary>Parses a whole response to <paramref name="command"/>; returns the parsed value (null for none).</summary>
    public static object? Parse(TpmCommandCode command, ReadOnlySpan<byte> response)
    {
        var (handles, sessions) = Shape(command);
        var frame = TpmResponse.Parse(response, command, handles, sessions);
        var p = frame.Parameters;
        switch (command)
        {
            case TpmCommandCode.PcrRead: return Tpm2.ParsePcrRead(p);
            case TpmCommandCode.ReadPublic: return Tpm2.ParseReadPublic(p);
            case TpmCommandCode.NvReadPublic: return Tpm2.ParseNvReadPublic(p);
            case TpmCommandCode.NvRead: return Tpm2.ParseNvRead(p);
            case TpmCommandCode.StartAuthSession: return Tpm2.ParseStartAuthSession(p);
            case TpmCommandCode.CreatePrimary: return Tpm2.ParseCreatePrimary(p);
            case TpmCommandCode.Create: return Tpm2.ParseCreate(p);
            case TpmCommandCode.Load: return Tpm2.ParseLoad(p);
            case TpmCommandCode.Quote: return Tpm2.ParseQuote(p);
            case TpmCommandCode.PolicySecret: Tpm2.ParsePolicySecret(p); return null;
            case TpmCommandCode.ActivateCredential: return Tpm2.ParseActivateCredential(p);
            default:
                if (!p.IsEmpty)
                    TpmFormatException.Throw(TpmFormatError.TrailingBytes, $"TPM2_{command} response (no parameters)");
                return null;
        }
    }
}
