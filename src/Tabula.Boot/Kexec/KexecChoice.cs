using Tabula.Packaging;

namespace Tabula.Boot.Kexec;

/// <summary>How stboot hands over (<c>--kexec=auto|load|file</c>, <see cref="BootOptions"/>).</summary>
internal enum KexecMethod
{
    /// <summary>kexec_load with stboot's layout where the kernel allows it, else kexec_file_load.</summary>
    Auto,
    /// <summary>kexec_load only, no fallback: a refusal fails the round (to see what the kernel says).</summary>
    Load,
    /// <summary>kexec_file_load only.</summary>
    File,
}

/// <summary>
/// Which system call the hand-over tries (<see cref="Seams.IKexec.Load"/>): <paramref name="TryLoad"/> kexec_load with
/// stboot's layout first; <paramref name="FallBack"/> to kexec_file_load when it cannot (a layout it cannot make, a
/// refusal); <paramref name="Why"/>, when kexec_load is not tried, says why (the console line's method).
/// </summary>
internal sealed record KexecChoice(bool TryLoad, bool FallBack, string? Why)
{
    /// <summary>
    /// The choice for this boot. Under Secure Boot or lockdown only kexec_file_load can work (measured with Debian's
    /// 6.1 under OVMF, docs/boot.md): kexec_load is refused (EACCES: IMA cannot appraise a kernel without a file; with
    /// lockdown=integrity, LOCKDOWN_KEXEC's EPERM after it), while kexec_file_load loads a kernel whose Authenticode
    /// signature chains to a key in the platform keyring (the firmware's db) or the kernel's own keyrings, and refuses
    /// any other (ENOKEY, EKEYREJECTED). So auto does not try kexec_load there.
    /// </summary>
    public static KexecChoice For(KexecMethod method, HandoverPlatform? platform) => method switch
    {
        KexecMethod.File => new KexecChoice(false, true, "--kexec=file"),
        KexecMethod.Load => new KexecChoice(true, false, null),
        _ when platform is { LockedDown: true } =>
            new KexecChoice(false, true, $"lockdown={HandoverPlatform.Spell(platform.Lockdown!.Value)} refuses it; the kernel must be signed by a key in db or the kernel's keyrings"),
        _ when platform is { SecureBoot: true } =>
            new KexecChoice(false, true, "secure_boot=on: refused under Secure Boot; the kernel must be signed by a key in db or the kernel's keyrings"),
        _ => new KexecChoice(true, true, null),
    };

    /// <summary>The console's word for what will be tried.</summary>
    public string Describe() => TryLoad ? (FallBack ? "kexec_load (else kexec_file_load)" : "kexec_load only (--kexec=load)") : $"kexec_file_load ({Why})";
}
