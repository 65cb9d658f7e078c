using Tabula.Images.Stboot;
using Tabula.Images.Uefi;
using Tabula.Qemu;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// stboot as UEFI boot media for the OVMF tests: the stboot initramfs (<see cref="OsPackages.StbootImage"/>'s inputs)
/// wrapped by Tabula.Images into a UKI over Debian's systemd EFI stub and the guest kernel, put in an ESP folder
/// (EFI/BOOT/BOOTX64.EFI, attached as a read-only FAT disk) or into the hybrid ISO; and each machine's own copy of
/// OVMF's variable store, with STHostConfig written by <see cref="OvmfVariableStore"/> when the test gives one.
/// </summary>
internal static class UefiMedia
{
    public const string Stub = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";

    /// <summary>The UKI for this test (host configuration in the image when <paramref name="hostConfigJson"/> is given, else none: the EFI variable).</summary>
    public static byte[] Uki(BootBinary boot, string trustPolicy, string? hostConfigJson, string[] modules, string commandLine, string name)
    {
        string dir = RepositoryPaths.Out("images", name);
        Directory.CreateDirectory(dir);
        string? hostConfig = null;
        if (hostConfigJson is not null)
            File.WriteAllText(hostConfig = Path.Combine(dir, "host_configuration.json"), hostConfigJson);
        using var initramfs = new MemoryStream();
        StbootImage.Write(new StbootImageInputs(boot.Path, trustPolicy, hostConfig, GuestKernel.Require().Release, modules), initramfs);
        return UkiImage.Build(new UkiInputs(File.ReadAllBytes(Stub), File.ReadAllBytes(GuestKernel.Require().KernelPath), initramfs.ToArray(), commandLine));
    }

    /// <summary>An ESP folder out/e2e/images/NAME-esp holding the UKI as EFI/BOOT/BOOTX64.EFI.</summary>
    public static QemuBootMedia Esp(byte[] uki, string name)
    {
        string esp = RepositoryPaths.Out("images", name + "-esp");
        if (Directory.Exists(esp))
            Directory.Delete(esp, recursive: true);
        string file = Path.Combine(esp, IsoImage.BootPath);
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllBytes(file, uki);
        return new QemuBootMedia(esp, QemuMediaKind.EspDirectory);
    }

    /// <summary>The hybrid ISO out/e2e/images/NAME.iso.</summary>
    public static QemuBootMedia Iso(byte[] uki, string name)
    {
        string iso = RepositoryPaths.Out("images", name + ".iso");
        IsoImage.Write(uki, iso);
        return new QemuBootMedia(iso, QemuMediaKind.Cdrom);
    }

    /// <summary>OVMF with this machine's own variable store out/e2e/images/NAME-VARS.fd, STHostConfig set to
    /// <paramref name="hostConfig"/> when given (bytes as they are: a test may write malformed JSON). With
    /// <paramref name="secureBootKeys"/> (a folder of PK, KEK, db) the keys are enrolled and the firmware is OVMF's
    /// Secure Boot build.</summary>
    public static QemuFirmware Firmware(string name, byte[]? hostConfig, string? secureBootKeys = null)
    {
        var store = OvmfVariableStore.Parse(File.ReadAllBytes(QemuFirmware.DebianVariables));
        if (hostConfig is not null)
            store.Set(StHostConfigVariable.With(hostConfig));
        if (secureBootKeys is not null)
            SecureBootKeys.Enroll(store, secureBootKeys, new Guid("5461627a-756c-6120-7465-737420637573"), DateTimeOffset.UtcNow);
        string vars = RepositoryPaths.Out("images", name + "-VARS.fd");
        Directory.CreateDirectory(Path.GetDirectoryName(vars)!);
        File.WriteAllBytes(vars, store.ToArray());
        return secureBootKeys is null
            ? new QemuFirmware(QemuFirmware.DebianCode, vars)
            : new QemuFirmware(QemuFirmware.DebianSecureBootCode, vars) { SecureBoot = true };
    }
}
