using Tabula.Boot.Kexec;
using Tabula.Packaging;

namespace Tabula.Boot.Tests;

/// <summary>Which hand-over stboot tries (issue 20): its own kexec_load layout where the kernel allows it; under Secure
/// Boot or lockdown only kexec_file_load, with the reason the console prints; --kexec=load and --kexec=file as asked.
/// UefiTests shows what the kernel does on each path under OVMF.</summary>
public sealed class KexecChoiceTests
{
    static readonly HandoverPlatform Bios = new(PlatformFirmware.Bios, null, KernelLockdown.None);
    static readonly HandoverPlatform Uefi = new(PlatformFirmware.Uefi, false, KernelLockdown.None);
    static readonly HandoverPlatform SecureBootLocked = new(PlatformFirmware.Uefi, true, KernelLockdown.Integrity);

    [Fact]
    public void Auto_tries_kexec_load_and_falls_back_on_bios_uefi_and_an_unknown_platform()
    {
        foreach (var platform in new[] { Bios, Uefi, new HandoverPlatform(PlatformFirmware.Uefi, null, null), null })
            Assert.Equal(new KexecChoice(true, true, null), KexecChoice.For(KexecMethod.Auto, platform));
        Assert.Equal("kexec_load (else kexec_file_load)", KexecChoice.For(KexecMethod.Auto, Uefi).Describe());
    }

    [Fact]
    public void Auto_under_lockdown_or_secure_boot_goes_to_kexec_file_load_and_says_why()
    {
        var locked = KexecChoice.For(KexecMethod.Auto, SecureBootLocked);
        Assert.False(locked.TryLoad);
        Assert.Equal("kexec_file_load (lockdown=integrity refuses it; the kernel must be signed by a key in db or the kernel's keyrings)", locked.Describe());
        Assert.StartsWith("lockdown=confidentiality", KexecChoice.For(KexecMethod.Auto, new(PlatformFirmware.Bios, null, KernelLockdown.Confidentiality)).Why);
        var secureBootOnly = KexecChoice.For(KexecMethod.Auto, new(PlatformFirmware.Uefi, true, KernelLockdown.None));   // a kernel that does not lock down: IMA still refuses
        Assert.False(secureBootOnly.TryLoad);
        Assert.StartsWith("secure_boot=on", secureBootOnly.Why);
    }

    [Fact]
    public void Load_and_file_are_what_was_asked_for_whatever_the_platform()
    {
        Assert.Equal(new KexecChoice(true, false, null), KexecChoice.For(KexecMethod.Load, SecureBootLocked));
        Assert.Equal("kexec_load only (--kexec=load)", KexecChoice.For(KexecMethod.Load, SecureBootLocked).Describe());
        Assert.Equal(new KexecChoice(false, true, "--kexec=file"), KexecChoice.For(KexecMethod.File, Bios));
    }
}
