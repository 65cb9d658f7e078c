using Tabula.Images.Stboot;
using Tabula.Images.Uefi;
using Tabula.Qemu;

namespace Tabula.Lab;

/// <summary>
/// How the lab's relays boot stboot (`lab up --firmware bios|uefi [--secure-boot]`, docs/lab.md "Firmware"):
/// <list type="bullet">
/// <item>bios (the default): SeaBIOS and QEMU's <c>-kernel/-initrd</c>, the host configuration a file in each relay's
/// stboot initramfs;</item>
/// <item>uefi: OVMF (Debian's OVMF_CODE_4M.fd) boots one stboot UKI (the systemd EFI stub, the guest kernel, an stboot
/// initramfs with no host configuration) from an ESP folder per relay (QEMU's vvfat); each relay's host configuration is
/// the STHostConfig EFI variable in its own copy of OVMF_VARS_4M.fd, written by Tabula.Images' variable store writer;</item>
/// <item>uefi with Secure Boot: the lab's own PK, KEK and db (DIR/secureboot), enrolled by the same writer in each relay's
/// variable store; OVMF's Secure Boot build (SMM); the UKI signed with db, and the relay package's kernel too (under Secure
/// Boot Debian's kernel locks down and stboot hands over with kexec_file_load, which takes only a kernel signed by a key the
/// kernel trusts: the db certificates, docs/boot.md).</item>
/// </list>
/// </summary>
public static class LabFirmware
{
    /// <summary>SeaBIOS and <c>-kernel/-initrd</c>.</summary>
    public const string Bios = "bios";

    /// <summary>OVMF booting the stboot UKI.</summary>
    public const string Uefi = "uefi";

    /// <summary>The owner GUID of the lab's signature list entries (PK, KEK, db).</summary>
    public static readonly Guid KeyOwner = new("7461626c-612d-6c61-622d-6b65792d6f77");

    /// <summary>The kernel command line of the relays' stboot (the UKI's .cmdline; -append under BIOS).</summary>
    internal const string CommandLine = "console=ttyS0 panic=-1 quiet";

    /// <summary>The lab's Secure Boot keys: PK, KEK, db (.key, .crt).</summary>
    public static string KeysDirectory(string labDirectory) => Path.Combine(labDirectory, "secureboot");

    /// <summary>The stboot UKI every relay boots (one for all: the per-relay part is in the variable store).</summary>
    public static string UkiPath(string labDirectory) => Path.Combine(labDirectory, "stboot", "stboot.efi");

    static string DbKey(string labDirectory) => Path.Combine(KeysDirectory(labDirectory), "db.key");

    static string DbCertificate(string labDirectory) => Path.Combine(KeysDirectory(labDirectory), "db.crt");

    /// <summary>Throws unless <paramref name="firmware"/> is bios or uefi, and Secure Boot comes with uefi.</summary>
    public static void Check(string firmware, bool secureBoot)
    {
        if (firmware is not (Bios or Uefi))
            throw new LabException($"--firmware is bios or uefi, got \"{firmware}\"");
        if (secureBoot && firmware != Uefi)
            throw new LabException("--secure-boot needs --firmware uefi");
    }

    /// <summary>What the host needs for <paramref name="firmware"/>: (file or tool, Debian package).</summary>
    public static IReadOnlyList<(string Need, string Package)> Requirements(string firmware, bool secureBoot) => firmware != Uefi ? []
        : [
            (QemuFirmware.DebianCode, "ovmf"), (QemuFirmware.DebianVariables, "ovmf"), (UkiImage.DebianStub, "systemd-boot-efi"),
            .. secureBoot ? new[] { (QemuFirmware.DebianSecureBootCode, "ovmf"), ("sbsign", "sbsigntool"), ("sbattach", "sbsigntool"), ("sbverify", "sbsigntool") } : [],
        ];

    /// <summary>Creates the lab's PK, KEK and db in DIR/secureboot.</summary>
    internal static void CreateKeys(string labDirectory)
    {
        var now = DateTimeOffset.UtcNow;
        try { SecureBootKeys.Create(KeysDirectory(labDirectory), "Tabula lab", now.AddDays(-1), now.AddYears(1)); }
        catch (Images.ImageException e) { throw new LabException("Secure Boot keys: " + e.Message, e); }
    }

    /// <summary>
    /// The kernel the relay package carries: the guest kernel as it is, or under Secure Boot the guest kernel with Debian's
    /// signature replaced by one made with the lab's db key (DIR/secureboot/vmlinuz-RELEASE.db-signed, written anew by every
    /// `up` and `upgrade`), so stboot's kexec_file_load under lockdown takes it.
    /// </summary>
    internal static LabKernel PackageKernel(LabKernel kernel, string labDirectory, bool secureBoot)
    {
        if (!secureBoot)
            return kernel;
        string signed = Path.Combine(KeysDirectory(labDirectory), $"vmlinuz-{kernel.Release}.db-signed");
        try { File.WriteAllBytes(signed, UkiSigner.SignKernel(File.ReadAllBytes(kernel.KernelPath), DbKey(labDirectory), DbCertificate(labDirectory))); }
        catch (Images.ImageException e) { throw new LabException("signing the package kernel with the lab's db key: " + e.Message, e); }
        return kernel with { KernelPath = signed };
    }

    /// <summary>Builds the relays' stboot UKI (no host configuration inside: stboot reads STHostConfig), signed with the db key
    /// under Secure Boot; returns its path (<see cref="UkiPath"/>) and size.</summary>
    internal static (string Path, long Bytes) BuildUki(string labDirectory, string bootBinary, string trustPolicy, LabKernel kernel, bool secureBoot)
    {
        string path = UkiPath(labDirectory);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        try
        {
            using var initramfs = new MemoryStream();
            StbootImage.Write(new StbootImageInputs(bootBinary, trustPolicy, null, kernel.Release, ["virtio_net"]), initramfs);
            byte[] uki = UkiImage.Build(new UkiInputs(File.ReadAllBytes(UkiImage.DebianStub), File.ReadAllBytes(kernel.KernelPath), initramfs.ToArray(), CommandLine));
            if (secureBoot)
                uki = UkiSigner.Sign(uki, DbKey(labDirectory), DbCertificate(labDirectory));
            File.WriteAllBytes(path, uki);
            return (path, uki.Length);
        }
        catch (Images.ImageException e) { throw new LabException("the stboot UKI: " + e.Message, e); }
    }

    /// <summary>
    /// A relay's UEFI media in <paramref name="machineDirectory"/>: esp/EFI/BOOT/BOOTX64.EFI (a copy of the UKI) and its own
    /// variable store OVMF_VARS_4M.fd (Debian's empty one, STHostConfig = <paramref name="hostConfigJson"/>, and under Secure
    /// Boot the lab's PK, KEK and db).
    /// </summary>
    internal static void WriteMachineMedia(string labDirectory, string machineDirectory, byte[] hostConfigJson, bool secureBoot)
    {
        string esp = Esp(machineDirectory);
        if (Directory.Exists(esp))
            Directory.Delete(esp, recursive: true);
        string boot = Path.Combine(esp, IsoImage.BootPath);
        Directory.CreateDirectory(Path.GetDirectoryName(boot)!);
        File.Copy(UkiPath(labDirectory), boot);
        try
        {
            var store = OvmfVariableStore.Parse(File.ReadAllBytes(QemuFirmware.DebianVariables));
            store.Set(StHostConfigVariable.With(hostConfigJson));
            if (secureBoot)
                SecureBootKeys.Enroll(store, KeysDirectory(labDirectory), KeyOwner, DateTimeOffset.UtcNow);
            using var file = new FileStream(Variables(machineDirectory), new FileStreamOptions
            {
                Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
            });
            file.Write(store.ToArray());
        }
        catch (Images.ImageException e) { throw new LabException("the relay's OVMF variable store: " + e.Message, e); }
    }

    static string Esp(string machineDirectory) => Path.Combine(machineDirectory, "esp");

    /// <summary>The relay's own OVMF variable store (it holds the relay's identity key and enrollment token: mode 0600).</summary>
    internal static string Variables(string machineDirectory) => Path.Combine(machineDirectory, "OVMF_VARS_4M.fd");

    /// <summary>QEMU's options for a relay in <paramref name="machineDirectory"/> (what <see cref="WriteMachineMedia"/> or, under
    /// BIOS, the stboot initramfs stboot.cpio.gz put there).</summary>
    internal static QemuOptions Options(string name, string machineDirectory, LabKernel kernel, string console, string firmware, bool secureBoot) =>
        firmware == Uefi
            ? QemuOptions.Uefi(name,
                new QemuFirmware(secureBoot ? QemuFirmware.DebianSecureBootCode : QemuFirmware.DebianCode, Variables(machineDirectory)) { SecureBoot = secureBoot },
                new QemuBootMedia(Esp(machineDirectory), QemuMediaKind.EspDirectory), console)
            : new QemuOptions(name, kernel.KernelPath, Path.Combine(machineDirectory, "stboot.cpio.gz"), CommandLine, console);
}
