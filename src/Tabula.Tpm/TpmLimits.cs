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

    /// <summary>Largest TPM2B_NAME: a 2-byte algorithm and a SHA-512 digest.</summary>
    public const int MaxNameBytes = 2 + MaxDigestBytes;

    /// <summary>Largest RSA modulus read (4096 bits; TPM2B_PUBLIC_KEY_RSA is MAX_RSA_KEY_BYTES, 512 in libtpms).</summary>
    public const int MaxRsaKeyBytes = 512;

    /// <summary>Largest ECC coordinate or signature half (P-521: 66 bytes; MAX_ECC_KEY_BYTES).</summary>
    public const int MaxEccKeyBytes = 66;

    /// <summary>
    /// How much one TPM2_NV_Read asks for. MAX_NV_BUFFER_SIZE is 1024 in the PC Client profile and libtpms, but
    /// TPM_PT_NV_BUFFER_MAX may be smaller on hardware (768 is common), so reads are chunked at that.
    /// </summary>
    public const int NvReadChunkBytes = 768;

    /// <summary>Largest NV index read through <see cref="Tpm2.NvRead(uint, int)"/> (an EK certificate is 1–2 KiB; MAX_NV_INDEX_SIZE is 2048 in libtpms).</summary>
    public const int MaxNvIndexBytes = 4096;

    /// <summary>Largest qualifying data (TPM2B_DATA: sizeof(TPMT_HA), 66 bytes).</summary>
    public const int MaxQualifyingDataBytes = 2 + MaxDigestBytes;

    /// <summary>Largest policy nonce and caller nonce this library sends or accepts (the session hash size).</summary>
    public const int MaxNonceBytes = MaxDigestBytes;
}
