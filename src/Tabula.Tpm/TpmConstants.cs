namespace Tabula.Tpm;

/// <summary>TPM_CC: the command codes this library sends (TPM 2.0 part 2, 6.5.2).</summary>
public enum TpmCommandCode : uint
{
    /// <summary>TPM2_NV_Read.</summary>
    NvRead = 0x0000014E,
    /// <summary>TPM2_NV_ReadPublic.</summary>
    NvReadPublic = 0x00000169,
    /// <summary>TPM2_CreatePrimary.</summary>
    CreatePrimary = 0x00000131,
    /// <summary>TPM2_Startup.</summary>
    Startup = 0x00000144,
    /// <summary>TPM2_Shutdown.</summary>
    Shutdown = 0x00000145,
    /// <summary>TPM2_ActivateCredential.</summary>
    ActivateCredential = 0x00000147,
    /// <summary>TPM2_PolicySecret.</summary>
    PolicySecret = 0x00000151,
    /// <summary>TPM2_Create.</summary>
    Create = 0x00000153,
    /// <summary>TPM2_Load.</summary>
    Load = 0x00000157,
    /// <summary>TPM2_Quote.</summary>
    Quote = 0x00000158,
    /// <summary>TPM2_FlushContext.</summary>
    FlushContext = 0x00000165,
    /// <summary>TPM2_ReadPublic.</summary>
    ReadPublic = 0x00000173,
    /// <summary>TPM2_StartAuthSession.</summary>
    StartAuthSession = 0x00000176,
    /// <summary>TPM2_GetCapability.</summary>
    GetCapability = 0x0000017A,
    /// <summary>TPM2_GetRandom.</summary>
    GetRandom = 0x0000017B,
    /// <summary>TPM2_PCR_Read.</summary>
    PcrRead = 0x0000017E,
    /// <summary>TPM2_PCR_Extend.</summary>
    PcrExtend = 0x00000182,
}

/// <summary>TPM_ALG_ID values this library knows (TCG algorithm registry).</summary>
public enum TpmAlgorithm : ushort
{
    /// <summary>TPM_ALG_ERROR.</summary>
    Error = 0x0000,
    /// <summary>TPM_ALG_RSA.</summary>
    Rsa = 0x0001,
    /// <summary>TPM_ALG_SHA1.</summary>
    Sha1 = 0x0004,
    /// <summary>TPM_ALG_HMAC.</summary>
    Hmac = 0x0005,
    /// <summary>TPM_ALG_AES.</summary>
    Aes = 0x0006,
    /// <summary>TPM_ALG_KEYEDHASH.</summary>
    KeyedHash = 0x0008,
    /// <summary>TPM_ALG_XOR.</summary>
    Xor = 0x000A,
    /// <summary>TPM_ALG_SHA256.</summary>
    Sha256 = 0x000B,
    /// <summary>TPM_ALG_SHA384.</summary>
    Sha384 = 0x000C,
    /// <summary>TPM_ALG_SHA512.</summary>
    Sha512 = 0x000D,
    /// <summary>TPM_ALG_NULL.</summary>
    Null = 0x0010,
    /// <summary>TPM_ALG_SM3_256.</summary>
    Sm3_256 = 0x0012,
    /// <summary>TPM_ALG_RSASSA (PKCS#1 v1.5 signatures).</summary>
    RsaSsa = 0x0014,
    /// <summary>TPM_ALG_RSAES.</summary>
    RsaEs = 0x0015,
    /// <summary>TPM_ALG_RSAPSS.</summary>
    RsaPss = 0x0016,
    /// <summary>TPM_ALG_OAEP.</summary>
    Oaep = 0x0017,
    /// <summary>TPM_ALG_ECDSA.</summary>
    Ecdsa = 0x0018,
    /// <summary>TPM_ALG_ECDH.</summary>
    Ecdh = 0x0019,
    /// <summary>TPM_ALG_ECDAA.</summary>
    Ecdaa = 0x001A,
    /// <summary>TPM_ALG_ECSCHNORR.</summary>
    EcSchnorr = 0x001C,
    /// <summary>TPM_ALG_KDF1_SP800_56A.</summary>
    Kdf1Sp800_56A = 0x0020,
    /// <summary>TPM_ALG_KDF1_SP800_108.</summary>
    Kdf1Sp800_108 = 0x0022,
    /// <summary>TPM_ALG_ECC.</summary>
    Ecc = 0x0023,
    /// <summary>TPM_ALG_SYMCIPHER.</summary>
    SymCipher = 0x0025,
    /// <summary>TPM_ALG_CFB.</summary>
    Cfb = 0x0043,
}

/// <summary>TPM_ST values used in headers and attestation structures (part 2, 6.9).</summary>
public enum TpmStructureTag : ushort
{
    /// <summary>TPM_ST_RSP_COMMAND: a TPM 1.2-format response (a TPM 2.0 answers a 1.2-style command with it).</summary>
    RspCommand = 0x00C4,
    /// <summary>TPM_ST_NULL.</summary>
    Null = 0x8000,
    /// <summary>TPM_ST_NO_SESSIONS.</summary>
    NoSessions = 0x8001,
    /// <summary>TPM_ST_SESSIONS.</summary>
    Sessions = 0x8002,
    /// <summary>TPM_ST_ATTEST_QUOTE.</summary>
    AttestQuote = 0x8018,
    /// <summary>TPM_ST_CREATION.</summary>
    Creation = 0x8021,
    /// <summary>TPM_ST_HASHCHECK.</summary>
    HashCheck = 0x8024,
}

/// <summary>TPM_SU: what TPM2_Startup resumes.</summary>
public enum TpmStartupType : ushort
{
    /// <summary>TPM_SU_CLEAR: a fresh start (PCRs reset), what a cold boot does.</summary>
    Clear = 0x0000,
    /// <summary>TPM_SU_STATE: resume the state saved by TPM2_Shutdown(STATE).</summary>
    State = 0x0001,
}

/// <summary>Permanent and session handles (part 2, 7.4).</summary>
public static class TpmHandles
{
    /// <summary>TPM_RH_OWNER: the storage hierarchy.</summary>
    public const uint Owner = 0x40000001;
    /// <summary>TPM_RS_PW: the password authorization session.</summary>
    public const uint PasswordSession = 0x40000009;
    /// <summary>TPM_RH_NULL.</summary>
    public const uint Null = 0x40000007;
    /// <summary>TPM_RH_ENDORSEMENT: the endorsement hierarchy.</summary>
    public const uint Endorsement = 0x4000000B;
    /// <summary>TPM_RH_PLATFORM.</summary>
    public const uint Platform = 0x4000000C;
    /// <summary>The first PCR handle; PCR n is handle n.</summary>
    public const uint FirstPcr = 0x00000000;
}

/// <summary>Digest sizes of the hash algorithms a TPM may have a PCR bank for.</summary>
public static class TpmHash
{
    /// <summary>The digest size of <paramref name="algorithm"/>, or 0 when it is not a hash this library knows.</summary>
    public static int DigestSize(TpmAlgorithm algorithm) => algorithm switch
    {
        TpmAlgorithm.Sha1 => 20,
        TpmAlgorithm.Sha256 or TpmAlgorithm.Sm3_256 => 32,
        TpmAlgorithm.Sha384 => 48,
        TpmAlgorithm.Sha512 => 64,
        _ => 0,
    };
}
