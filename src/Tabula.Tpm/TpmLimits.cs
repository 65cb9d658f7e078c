namespace Tabula.Tpm;

/// <summary>Every bound this library applies, with where it comes from.</summary>
public static class TpmLimits
{
    /// <summary>
    /// Largest command or response this library sends or accepts. TPM_MAX_COMMAND_SIZE and TPM_MAX_RESPONSE_SIZE are
    /// 4096 in the PC Client platform profile and in swtpm (libtpms), and the kernel's tpm driver buffers one page.
    /// </summary>
    public const int MaxMessageBytes = 4096;

    /// <summary>The response header: tag (2), responseSize (4), responseCode (4). Commands have the same shape.</summary>
    public const int HeaderBytes = 10;

    /// <summary>
    /// Largest TPM2B this library reads. No TPM2B in a response can be larger than the response; this bound keeps a
    /// hostile size field from allocating more than one message.
    /// </summary>
    public const int MaxTpm2BBytes = MaxMessageBytes - HeaderBytes;

    /// <summary>PCRs in the PC Client platform profile (0–23): sizeofSelect is 3.</summary>
    public const int PcrCount = 24;

    /// <summary>
    /// Largest pcrSelect array read (PCR_SELECT_MAX = 3 for 24 PCRs in libtpms; TPMS_PCR_SELECT allows up to
    /// this many bytes on TPMs with more PCRs, which we read but never select).
    /// </summary>
    public const int MaxPcrSelectBytes = 4;

    /// <summary>Most banks in one TPML_PCR_SELECTION (HASH_COUNT; libtpms implements SHA-1, SHA-256, SHA-384, SHA-512 and SM3).</summary>
    public const int MaxPcrBanks = 16;

    /// <summary>Most digests in one TPML_DIGEST (part 2, 10.9.2: a PCR_Read answers at most 8).</summary>
    public const int MaxDigests = 8;

    /// <summary>Largest digest (SHA-512).</summary>
    public const int MaxDigestBytes = 64;
}
