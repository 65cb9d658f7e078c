namespace Tabula.Boot;

/// <summary>What went wrong, as a code: one per distinct refusal or failure (threat checklist: "report every rejected
/// check with a distinct reason code").</summary>
internal enum FailureReason
{
    /// <summary>A kernel module the machine asked for did not load, or the image's module index is unusable.</summary>
    ModuleLoadFailed,
    /// <summary>The trust policy folder is missing or invalid.</summary>
    TrustPolicyInvalid,
    /// <summary>No host configuration file and no STHostConfig EFI variable.</summary>
    HostConfigMissing,
    /// <summary>The host configuration does not parse or validate.</summary>
    HostConfigInvalid,
    /// <summary>No usable network interface (none, no MAC match, no carrier).</summary>
    NoInterface,
    /// <summary>Addresses or routes could not be configured.</summary>
    NetworkSetupFailed,
    /// <summary>DHCP gave no lease in time, or a NAK.</summary>
    DhcpFailed,
    /// <summary>An ospkg_pointer entry is not an absolute http(s) URL, or os_pkg_url does not resolve to one.</summary>
    InvalidUrl,
    /// <summary>Connection refused, reset, unreachable.</summary>
    ConnectionFailed,
    /// <summary>TLS: the server's chain does not lead to tls_roots.pem, or the name does not match.</summary>
    TlsUntrusted,
    /// <summary>A connect, read or overall deadline passed.</summary>
    Timeout,
    /// <summary>The server answered with a status other than 200.</summary>
    HttpStatus,
    /// <summary>The body is larger than the cap.</summary>
    TooLarge,
    /// <summary>The body is empty.</summary>
    Empty,
    /// <summary>The descriptor does not parse.</summary>
    DescriptorInvalid,
    /// <summary>Fewer valid signatures than the threshold (tampered archive, wrong root, expired, …).</summary>
    SignaturesRefused,
    /// <summary>The archive is not a valid OS package (zip, manifest, entries), after the signatures verified.</summary>
    ArchiveInvalid,
    /// <summary>The initramfs fetch method's /ospkg files are missing.</summary>
    PackageFileMissing,
    /// <summary>Freshness (issue 16) refused the boot: the detail starts with the refusal name (ticket-nonce, below-floor, …).</summary>
    FreshnessRefused,
    /// <summary>Measured boot (issue 19) is required and there is no TPM, or the TPM refused a command.</summary>
    MeasurementFailed,
    /// <summary>kexec_file_load or reboot(KEXEC) failed.</summary>
    KexecFailed,
    /// <summary>Something we did not foresee (a bug); still reported and retried.</summary>
    Unexpected,
}

/// <summary>
/// A failure as a value: the stage, the reason code, the URL involved (userinfo removed) and one line of detail.
/// <see cref="ToString"/> is the console line.
/// </summary>
internal sealed record BootFailure(string Stage, FailureReason Reason, string Detail, string? Url = null)
{
    public override string ToString() =>
        $"stage={Stage} reason={Reason}{(Url is null ? "" : $" url={Url}")} detail=\"{OneLine(Detail)}\"";

    static string OneLine(string text) => text.ReplaceLineEndings(" | ").Replace('"', '\'');
}
