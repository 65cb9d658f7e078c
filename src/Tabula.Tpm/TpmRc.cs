namespace Tabula.Tpm;

/// <summary>
/// TPM_RC base codes (part 2, 6.6.3): a response code with its handle, parameter or session number masked off
/// (<see cref="TpmResponseCode.Base"/>), so code can say <c>e.Code.Base == TpmRc.AuthFail</c>.
/// </summary>
public enum TpmRc : uint
{
#pragma warning disable CS1591 // the names are the specification's, TPM_RC_ with the prefix dropped
    Success = 0x000,
    // Format 0, RC_VER1 = 0x100.
    Initialize = 0x100, Failure = 0x101, Sequence = 0x103, Private = 0x10B, Hmac = 0x119, Disabled = 0x120,
    Exclusive = 0x121, AuthType = 0x124, AuthMissing = 0x125, Policy = 0x126, Pcr = 0x127, PcrChanged = 0x128,
    Upgrade = 0x12D, TooManyContexts = 0x12E, AuthUnavailable = 0x12F, Reboot = 0x130, Unbalanced = 0x131,
    CommandSize = 0x142, CommandCode = 0x143, AuthSize = 0x144, AuthContext = 0x145, NvRange = 0x146, NvSize = 0x147,
    NvLocked = 0x148, NvAuthorization = 0x149, NvUninitialized = 0x14A, NvSpace = 0x14B, NvDefined = 0x14C,
    BadContext = 0x150, Cphash = 0x151, Parent = 0x152, NeedsTest = 0x153, NoResult = 0x154, Sensitive = 0x155,
    // Format 1, RC_FMT1 = 0x080.
    Asymmetric = 0x081, Attributes = 0x082, Hash = 0x083, Value = 0x084, Hierarchy = 0x085, KeySize = 0x087,
    Mgf = 0x088, Mode = 0x089, Type = 0x08A, Handle = 0x08B, Kdf = 0x08C, Range = 0x08D, AuthFail = 0x08E,
    Nonce = 0x08F, Pp = 0x090, Scheme = 0x092, Size = 0x095, Symmetric = 0x096, Tag = 0x097,
    Selector = 0x098, Insufficient = 0x09A, Signature = 0x09B, Key = 0x09C, PolicyFail = 0x09D, Integrity = 0x09F,
    Ticket = 0x0A0, ReservedBits = 0x0A1, BadAuth = 0x0A2, Expired = 0x0A3, PolicyCc = 0x0A4, Binding = 0x0A5,
    Curve = 0x0A6, EccPoint = 0x0A7,
    // Warnings, RC_WARN = 0x900.
    ContextGap = 0x901, ObjectMemory = 0x902, SessionMemory = 0x903, Memory = 0x904, SessionHandles = 0x905,
    ObjectHandles = 0x906, Locality = 0x907, Yielded = 0x908, Canceled = 0x909, Testing = 0x90A,
    ReferenceH0 = 0x910, ReferenceH1 = 0x911, ReferenceH2 = 0x912, ReferenceS0 = 0x918, ReferenceS1 = 0x919,
    NvRate = 0x920, Lockout = 0x921, Retry = 0x922, NvUnavailable = 0x923,
#pragma warning restore CS1591
}

/// <summary>
/// A TPM_RC as the TPM sent it, decoded (part 2, 6.6): format 0 (a plain error or warning) or format 1 (an error
/// about one handle, parameter or session, whose number is in bits 8–11), plus what the layers above the TPM add
/// (bits 16–23: a resource manager or TSS layer).
/// </summary>
public readonly record struct TpmResponseCode(uint Value)
{
    const uint Fmt1 = 0x080, Ver1 = 0x100, Vendor = 0x400, Severity = 0x800, ParameterBit = 0x040, SessionBit = 0x800;

    /// <summary>TPM_RC_SUCCESS.</summary>
    public bool IsSuccess => Value == 0;

    /// <summary>The layer that produced the code (bits 16–23): 0 is the TPM itself.</summary>
    public int Layer => (int)(Value >> 16) & 0xFF;

    uint Code => Value & 0xFFFF;

    /// <summary>Format 1: the code names a handle, parameter or session (bit 7).</summary>
    public bool IsFormat1 => (Code & Fmt1) != 0;

    /// <summary>A TPM 1.2 code (format 0 without RC_VER1): the device is not speaking TPM 2.0.</summary>
    public bool IsTpm12 => !IsSuccess && !IsFormat1 && (Code & Ver1) == 0;

    /// <summary>A vendor-defined format-0 code (bit 10).</summary>
    public bool IsVendorDefined => !IsFormat1 && (Code & Vendor) != 0;

    /// <summary>A format-0 warning (bit 11): the command was not run; it may succeed later (e.g. TPM_RC_RETRY).</summary>
    public bool IsWarning => !IsFormat1 && (Code & Ver1) != 0 && (Code & Severity) != 0;

    /// <summary>The error number: 6 bits in format 1, 7 bits in format 0.</summary>
    public int ErrorNumber => (int)(IsFormat1 ? Code & 0x3F : Code & 0x7F);

    /// <summary>The 1-based parameter the error is about, when it is about one.</summary>
    public int? Parameter => IsFormat1 && (Code & ParameterBit) != 0 ? (int)((Code >> 8) & 0xF) : null;

    /// <summary>The 1-based session the error is about, when it is about one.</summary>
    public int? Session => IsFormat1 && (Code & ParameterBit) == 0 && (Code & SessionBit) != 0 ? (int)((Code >> 8) & 0x7) : null;

    /// <summary>The 1-based handle the error is about, when it is about one (0 means "unspecified handle").</summary>
    public int? Handle => IsFormat1 && (Code & ParameterBit) == 0 && (Code & SessionBit) == 0 ? (int)((Code >> 8) & 0x7) : null;

    /// <summary>The code without its number and layer, to compare with <see cref="TpmRc"/>.</summary>
    public TpmRc Base => (TpmRc)(IsFormat1 ? Fmt1 | (Code & 0x3F) : Code);

    /// <summary>True for the warnings after which the same command may simply be sent again.</summary>
    public bool IsRetryable => Layer == 0 && Base is TpmRc.Retry or TpmRc.Yielded or TpmRc.Testing or TpmRc.NvRate;

    /// <summary>The specification's name (TPM_RC_AUTH_FAIL), or the hex value when the code is not one we name.</summary>
    public string Name => IsTpm12 ? $"TPM 1.2 code 0x{Code:x}"
        : Layer == 0 && Enum.IsDefined(Base) ? "TPM_RC_" + Snake(Base.ToString()) : $"0x{Base:x}";

    /// <summary>E.g. <c>TPM_RC_AUTH_FAIL (0x98e, session 1)</c>.</summary>
    public override string ToString()
    {
        string where = Parameter is { } p ? $", parameter {p}" : Session is { } s ? $", session {s}"
            : Handle is { } h and > 0 ? $", handle {h}" : "";
        string layer = Layer == 0 ? "" : $", layer {Layer}";
        return $"{Name} (0x{Value:x}{where}{layer})";
    }

    static string Snake(string pascal)
    {
        var sb = new System.Text.StringBuilder(pascal.Length + 8);
        for (int i = 0; i < pascal.Length; i++)
        {
            char c = pascal[i];
            if (i > 0 && char.IsUpper(c))
                sb.Append('_');
            sb.Append(char.ToUpperInvariant(c));
        }
        return sb.ToString();
    }
}
