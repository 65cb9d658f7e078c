namespace Tabula.Tpm;

/// <summary>
/// TPMS_ATTEST of a quote (part 2, 10.12.8 with TPMS_QUOTE_INFO): what the TPM signed. The verifier checks the
/// magic and type (only a TPM makes structures that start TPM_GENERATED_VALUE, and a restricted key signs nothing
/// else), the qualifying data (the verifier's nonce), and the PCR digest against PCR values it trusts.
/// </summary>
public sealed record TpmAttest(
    byte[] QualifiedSigner,
    byte[] ExtraData,
    ulong Clock,
    uint ResetCount,
    uint RestartCount,
    bool Safe,
    ulong FirmwareVersion,
    IReadOnlyList<PcrSelection> PcrSelection,
    byte[] PcrDigest)
{
    /// <summary>TPM_GENERATED_VALUE: "\xffTCG".</summary>
    public const uint GeneratedValue = 0xFF544347;

    /// <summary>Parses a TPMS_ATTEST of type TPM_ST_ATTEST_QUOTE that fills <paramref name="bytes"/>.</summary>
    public static TpmAttest ParseQuote(ReadOnlySpan<byte> bytes)
    {
        var r = new TpmReader(bytes);
        if (r.ReadUInt32("TPMS_ATTEST.magic") != GeneratedValue)
            TpmFormatException.Throw(TpmFormatError.InvalidValue, "TPMS_ATTEST.magic");
        if ((TpmStructureTag)r.ReadUInt16("TPMS_ATTEST.type") != TpmStructureTag.AttestQuote)
            TpmFormatException.Throw(TpmFormatError.UnexpectedTag, "TPMS_ATTEST.type");
        byte[] signer = r.ReadTpm2B(TpmLimits.MaxNameBytes, "TPMS_ATTEST.qualifiedSigner").ToArray();
        byte[] extra = r.ReadTpm2B(TpmLimits.MaxQualifyingDataBytes, "TPMS_ATTEST.extraData").ToArray();
        ulong clock = r.ReadUInt64("TPMS_CLOCK_INFO.clock");
        uint resets = r.ReadUInt32("TPMS_CLOCK_INFO.resetCount");
        uint restarts = r.ReadUInt32("TPMS_CLOCK_INFO.restartCount");
        byte safe = r.ReadByte("TPMS_CLOCK_INFO.safe");
        if (safe > 1)
            TpmFormatException.Throw(TpmFormatError.InvalidValue, "TPMS_CLOCK_INFO.safe");
        ulong firmware = r.ReadUInt64("TPMS_ATTEST.firmwareVersion");
        var selection = Tpm.PcrSelection.ReadList(ref r);
        byte[] digest = r.ReadTpm2B(TpmLimits.MaxDigestBytes, "TPMS_QUOTE_INFO.pcrDigest").ToArray();
        r.ExpectEnd("TPMS_ATTEST");
        return new TpmAttest(signer, extra, clock, resets, restarts, safe == 1, firmware, selection, digest);
    }
}
