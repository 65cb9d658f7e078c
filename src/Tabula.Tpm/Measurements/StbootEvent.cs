namespace Tabula.Tpm.Measurements;

/// <summary>
/// The PCRs stboot measures into, System Transparency's split (stboot host/tpm.go: "Detail", "Authority",
/// "Identity"). The platform firmware profile leaves PCRs 8–15 to the OS loader; ST took 12–14.
/// </summary>
public static class StbootPcr
{
    /// <summary>PCR 12, what boots: the OS package archive and its descriptor.</summary>
    public const int Detail = 12;

    /// <summary>PCR 13, who decided it may boot: the trust policy, the signing roots, the HTTPS roots (and Tabula's
    /// ticket root and the platform's Secure Boot and lockdown state).</summary>
    public const int Authority = 13;

    /// <summary>PCR 14, which machine this is: its identity, its host configuration (secrets excluded), the boot ticket,
    /// and the relay's WireGuard public key (ST: "identity and data channel public key").</summary>
    public const int Identity = 14;

    /// <summary>The PCRs a relay's quote covers and a verifier requires (SHA-256 bank): all three, in order.</summary>
    public static ReadOnlySpan<int> Quoted => [Detail, Authority, Identity];
}

/// <summary>
/// Event types of the measurements in the log (TCG_PCR_EVENT2.eventType). 0xa0000000–0xa0000005 are System
/// Transparency's (stboot host/tpm.go), with the same meaning; 0xa0000100 and up are Tabula's own, in the same vendor
/// range but away from ST's, for what ST does not measure. <see cref="NoAction"/> is the TCG's EV_NO_ACTION (the Spec ID
/// header; never extended). docs/boot.md "Measured boot" has the table with each event's digest and data.
/// </summary>
public enum StbootEvent : uint
{
    /// <summary>EV_NO_ACTION (TCG PC Client PFP): informational, not extended; the log's first event, the Spec ID event.</summary>
    NoAction = 0x00000003,

    /// <summary>ST OspkgArchive, PCR 12: digest = SHA-256 of the OS package zip (the verified digest); data = the archive's
    /// file name.</summary>
    OspkgArchive = 0xa0000000,

    /// <summary>ST OspkgManifest, PCR 12: the descriptor (ST's name; it is the descriptor JSON, not manifest.json);
    /// data = the descriptor bytes as fetched and verified, digest = their SHA-256.</summary>
    OspkgManifest = 0xa0000001,

    /// <summary>ST SecurityConfig, PCR 13: data = trust_policy.json as read, digest = its SHA-256.</summary>
    SecurityConfig = 0xa0000002,

    /// <summary>ST SigningRoot, PCR 13: data = the DER of each signing root in file order, concatenated.</summary>
    SigningRoot = 0xa0000003,

    /// <summary>ST HTTPSRoot, PCR 13: data = the DER of each TLS root in file order, concatenated (empty without).</summary>
    HttpsRoot = 0xa0000004,

    /// <summary>ST UxIdentity, PCR 14: the platform's human-readable identity. Tabula's: the machine id (32 hex digits,
    /// from the host configuration's identity key), when it has one.</summary>
    UxIdentity = 0xa0000005,

    /// <summary>Tabula, PCR 13: ticket_root.pem's key (DER SubjectPublicKeyInfo or certificate, as in the file), when a
    /// freshness policy names one.</summary>
    TicketRoot = 0xa0000100,

    /// <summary>Tabula, PCR 14: the host configuration with its secrets taken out (see HostConfig measurement).</summary>
    HostConfig = 0xa0000101,

    /// <summary>Tabula, PCR 14: the boot ticket bytes exactly as received, when there was one.</summary>
    BootTicket = 0xa0000102,

    /// <summary>Tabula, PCR 13, once per boot: the platform stboot ran on, as handed to the OS (handover.json's
    /// <c>platform</c> object, compact JSON: firmware, Secure Boot, lockdown); digest = SHA-256 of it.</summary>
    PlatformSecurity = 0xa0000104,

    /// <summary>Tabula, PCR 14, extended by the relay agent before it enrolls: data = its fresh WireGuard public key
    /// (32 bytes), digest = SHA-256 of it.</summary>
    WireGuardKey = 0xa0000103,
}

/// <summary>Which PCR each of stboot's (and the relay's) event types goes into: the one table a writer and a verifier share.</summary>
public static class StbootEvents
{
    /// <summary>The PCR <paramref name="type"/> is measured into (12, 13 or 14), or null for a type stboot and the relay never
    /// write (another component's, or <see cref="StbootEvent.NoAction"/>).</summary>
    public static int? PcrOf(StbootEvent type) => type switch
    {
        StbootEvent.OspkgArchive or StbootEvent.OspkgManifest => StbootPcr.Detail,
        StbootEvent.SecurityConfig or StbootEvent.SigningRoot or StbootEvent.HttpsRoot or StbootEvent.TicketRoot
            or StbootEvent.PlatformSecurity => StbootPcr.Authority,
        StbootEvent.UxIdentity or StbootEvent.HostConfig or StbootEvent.BootTicket or StbootEvent.WireGuardKey => StbootPcr.Identity,
        _ => null,
    };

    /// <summary>True when <paramref name="measured"/> is one stboot or the relay writes, in the PCR it belongs to.</summary>
    public static bool IsStbootEvent(MeasuredEvent measured) => PcrOf(measured.Type) == measured.Pcr;
}
