namespace Tabula.Tpm;

/// <summary>
/// A response split into its parts (part 1, 18.10): handles, then the parameters, then (with sessions) one
/// authorization per session. Checks the header size against the bytes, the tag against whether the command had
/// sessions, and the session count; an error code becomes <see cref="TpmErrorException"/>.
/// </summary>
public readonly ref struct TpmResponse
{
    /// <summary>The handles the command returns (4 bytes each), in order.</summary>
    public ReadOnlySpan<byte> Handles { get; }

    /// <summary>The response parameters, to be parsed by the command's own parser.</summary>
    public ReadOnlySpan<byte> Parameters { get; }

    TpmResponse(ReadOnlySpan<byte> handles, ReadOnlySpan<byte> parameters)
    {
        Handles = handles;
        Parameters = parameters;
    }

    /// <summary>The first returned handle.</summary>
    public uint Handle => new TpmReader(Handles).ReadUInt32("handle");

    /// <summary>
    /// Parses <paramref name="response"/> to <paramref name="command"/>, which returns <paramref name="handleCount"/>
    /// handles and was sent with <paramref name="sessionCount"/> sessions (0: TPM_ST_NO_SESSIONS).
    /// </summary>
    public static TpmResponse Parse(ReadOnlySpan<byte> response, TpmCommandCode command, int handleCount, int sessionCount)
    {
        var r = new TpmReader(response);
        var tag = (TpmStructureTag)r.ReadUInt16("response.tag");
        uint size = r.ReadUInt32("response.responseSize");
        var code = new TpmResponseCode(r.ReadUInt32("response.responseCode"));
        if (size != (uint)response.Length)
            TpmFormatException.Throw(size > (uint)response.Length ? TpmFormatError.Truncated : TpmFormatError.SizeMismatch, "response.responseSize");
        if (!code.IsSuccess)
        {
            // An error response is the header alone, tagged TPM_ST_NO_SESSIONS (or 1.2's TPM_ST_RSP_COMMAND).
            if (tag is not (TpmStructureTag.NoSessions or TpmStructureTag.RspCommand))
                TpmFormatException.Throw(TpmFormatError.UnexpectedTag, "response.tag");
            r.ExpectEnd("response (error)");
            throw new TpmErrorException(command, code);
        }
        if (tag != (sessionCount > 0 ? TpmStructureTag.Sessions : TpmStructureTag.NoSessions))
            TpmFormatException.Throw(TpmFormatError.UnexpectedTag, "response.tag");
        var handles = r.ReadBytes(4 * handleCount, "response.handles");
        if (sessionCount == 0)
            return new TpmResponse(handles, r.ReadBytes(r.Remaining, "response.parameters"));

        uint parameterSize = r.ReadUInt32("response.parameterSize");
        if (parameterSize > (uint)r.Remaining)
            TpmFormatException.Throw(TpmFormatError.Truncated, "response.parameterSize");
        var parameters = r.ReadBytes((int)parameterSize, "response.parameters");
        for (int i = 0; i < sessionCount; i++)
        {
            r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMS_AUTH_RESPONSE.nonce");
            r.ReadByte("TPMS_AUTH_RESPONSE.sessionAttributes");
            r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMS_AUTH_RESPONSE.hmac");
        }
        r.ExpectEnd("response.authorizations");
        return new TpmResponse(handles, parameters);
    }
}
