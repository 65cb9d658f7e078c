using Tabula.Linux;
using Tabula.Packaging;

namespace Tabula.Boot;

/// <summary>
/// What booted stboot and what its kernel enforces (issue 20), read once per boot at the config stage: UEFI or BIOS
/// (/sys/firmware/efi), the firmware's Secure Boot state (the <c>SecureBoot</c> variable of the EFI global namespace,
/// read through efivarfs: 1 = on) and the kernel's lockdown mode (securityfs, /sys/kernel/security/lockdown). It goes to
/// the console (<see cref="Describe"/>), the hand-over (<see cref="HandoverPlatform"/>), the PCR 13 PlatformSecurity
/// event, and decides the hand-over path (<see cref="Kexec.KexecChoice"/>): Debian's kernel locks down to integrity
/// under Secure Boot, and then refuses kexec_load and checks kexec_file_load's kernel signature.
/// </summary>
internal static class PlatformProbe
{
    /// <summary>EFI_GLOBAL_VARIABLE (UEFI 2.10 §3.3).</summary>
    public static readonly Guid GlobalVariable = new("8be4df61-93ca-11d2-aa0d-00e098032b8c");

    public static HandoverPlatform Read(BootEnvironment env)
    {
        bool uefi = Directory.Exists(env.PathOf("/sys/firmware/efi"));
        bool? secureBoot = null;
        try
        {
            if (uefi && env.Mounts.MountEfiVariables() && env.EfiVariables.TryRead("SecureBoot", GlobalVariable, out var variable))
                secureBoot = variable!.Data is [1];
        }
        catch (Exception e) when (e is KernelDataException or IOException or UnauthorizedAccessException) { }
        return new HandoverPlatform(uefi ? PlatformFirmware.Uefi : PlatformFirmware.Bios, secureBoot, ReadLockdown(env.PathOf(LockdownFile)));
    }

    const string LockdownFile = "/sys/kernel/security/lockdown";

    /// <summary>The kernel's lockdown mode from securityfs at <paramref name="path"/>, or null when it cannot be read.</summary>
    public static KernelLockdown? ReadLockdown(string path = LockdownFile)
    {
        try { return HandoverPlatform.ParseSecurityFs(File.ReadAllText(path)); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return null; }
    }

    /// <summary>The config line's words: <c>firmware=uefi secure_boot=on|off|unknown lockdown=…</c>, or
    /// <c>firmware=bios lockdown=…</c> (unknown when securityfs or the lockdown LSM is not there).</summary>
    public static string Describe(HandoverPlatform platform) => platform.Firmware == PlatformFirmware.Uefi
        ? $"firmware=uefi secure_boot={platform.SecureBootWord} lockdown={platform.LockdownWord}"
        : $"firmware=bios lockdown={platform.LockdownWord}";
}
