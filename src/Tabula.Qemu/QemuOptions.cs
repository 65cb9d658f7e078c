namespace Tabula.Qemu;

/// <summary>A virtio-net NIC on a tap device that already exists (in <see cref="QemuOptions.Namespace"/>, if set).</summary>
/// <param name="Tap">The tap interface's name (<c>-netdev tap,ifname=…,script=no,downscript=no</c>).</param>
/// <param name="Mac">The guest NIC's MAC address.</param>
public sealed record QemuNic(string Tap, string Mac);

/// <summary>A host directory shared with the guest over virtio-9p (<c>-virtfs local,…</c>).</summary>
/// <param name="Path">The host directory.</param>
/// <param name="Tag">The mount tag the guest mounts.</param>
public sealed record QemuHostShare(string Path, string Tag)
{
    /// <summary>Read-only in the guest (the default).</summary>
    public bool ReadOnly { get; init; } = true;
}

/// <summary>
/// UEFI firmware as QEMU's two flash devices (OVMF): the code read-only, the variable store writable. Give each machine
/// its own copy of the variable store (the firmware writes boot entries into it), e.g. from
/// /usr/share/OVMF/OVMF_VARS_4M.fd, or one with variables written by <c>tabula hostconfig efivar</c>.
/// </summary>
/// <param name="Code">The firmware code (OVMF_CODE_4M.fd, or OVMF_CODE_4M.secboot.fd with <see cref="SecureBoot"/>).</param>
/// <param name="Variables">The machine's variable store (OVMF_VARS_4M.fd-sized, writable).</param>
public sealed record QemuFirmware(string Code, string Variables)
{
    /// <summary>Debian's ovmf package: OVMF without Secure Boot, 4 MiB flash layout.</summary>
    public const string DebianCode = "/usr/share/OVMF/OVMF_CODE_4M.fd";

    /// <summary>Debian's ovmf package: OVMF with Secure Boot and SMM (needs <see cref="SecureBoot"/>).</summary>
    public const string DebianSecureBootCode = "/usr/share/OVMF/OVMF_CODE_4M.secboot.fd";

    /// <summary>Debian's ovmf package: the empty variable store matching the 4 MiB code.</summary>
    public const string DebianVariables = "/usr/share/OVMF/OVMF_VARS_4M.fd";

    /// <summary>The firmware is built with Secure Boot and SMM: the machine gets SMM and a secure-only code flash
    /// (so the OS cannot write the variable store behind the firmware's back).</summary>
    public bool SecureBoot { get; init; }
}

/// <summary>How boot media reaches the firmware.</summary>
public enum QemuMediaKind
{
    /// <summary>An ISO image on an AHCI CD drive (a BMC's virtual media).</summary>
    Cdrom,

    /// <summary>A host directory as a read-only FAT disk (QEMU's vvfat) on virtio-blk (IDE refuses a read-only disk): an
    /// ESP holding EFI/BOOT/BOOTX64.EFI. stboot images carry no virtio_blk, so the guest OS never sees it as a disk.</summary>
    EspDirectory,
}

/// <summary>What the firmware boots instead of <c>-kernel</c>: read-only, first in the boot order.</summary>
/// <param name="Path">The ISO file, or the directory that becomes the ESP.</param>
/// <param name="Kind">How it is attached.</param>
public sealed record QemuBootMedia(string Path, QemuMediaKind Kind);

/// <summary>
/// What a machine boots and how it is wired. Always software emulation (<c>-accel tcg -cpu max</c>: KVM crashes on
/// the machines this runs on), no display, no monitor, no reboot unless <see cref="ExitOnReboot"/> is false (a guest reboot
/// or poweroff ends QEMU), no default devices, the serial console to <see cref="ConsoleLog"/>.
/// </summary>
/// <param name="Name">The machine's name (<c>-name</c>, and in messages).</param>
/// <param name="Kernel">The bzImage (<c>-kernel</c>), or null when <see cref="BootMedia"/> is booted by <see cref="Firmware"/>.</param>
/// <param name="Initramfs">The initramfs (<c>-initrd</c>), null with <paramref name="Kernel"/>.</param>
/// <param name="CommandLine">The kernel command line (<c>-append</c>); arguments after "--" reach /init. Null with <paramref name="Kernel"/>.</param>
/// <param name="ConsoleLog">The file the serial console is written to (created or truncated at start).</param>
public sealed record QemuOptions(string Name, string? Kernel, string? Initramfs, string? CommandLine, string ConsoleLog)
{
    /// <summary>A machine whose UEFI <paramref name="firmware"/> boots <paramref name="media"/> (no <c>-kernel</c>).</summary>
    public static QemuOptions Uefi(string name, QemuFirmware firmware, QemuBootMedia media, string consoleLog) =>
        new(name, null, null, null, consoleLog) { Firmware = firmware, BootMedia = media, MachineType = "q35" };

    /// <summary>UEFI firmware (OVMF) instead of QEMU's BIOS, or null. With <c>-kernel</c> the firmware starts the kernel's
    /// EFI stub itself; with <see cref="BootMedia"/> it boots that.</summary>
    public QemuFirmware? Firmware { get; init; }

    /// <summary>Boot media for <see cref="Firmware"/>, or null.</summary>
    public QemuBootMedia? BootMedia { get; init; }

    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; } = 1024;

    /// <summary>Virtual CPUs (<c>-smp</c>, given only when more than one).</summary>
    public int Cpus { get; init; } = 1;

    /// <summary>The machine type (<c>-machine</c>, e.g. q35), or null for QEMU's default (i440fx).</summary>
    public string? MachineType { get; init; }

    /// <summary>The network namespace QEMU runs in (through <c>ip netns exec</c>, which execs QEMU), or null.</summary>
    public string? Namespace { get; init; }

    /// <summary>The NIC, or null for none (<c>-nic none</c>).</summary>
    public QemuNic? Nic { get; init; }

    /// <summary>A raw disk image attached as a virtio block device, or null.</summary>
    public string? Disk { get; init; }

    /// <summary>A host directory shared over virtio-9p, or null.</summary>
    public QemuHostShare? HostShare { get; init; }

    /// <summary>A TPM 2.0 (an swtpm started before QEMU), or null for none.</summary>
    public QemuTpm? Tpm { get; init; }

    /// <summary>
    /// True (the default): a guest reboot ends QEMU as a poweroff does (<c>-no-reboot</c>), so with <c>panic=-1</c> a PID-1 death
    /// is a QEMU exit a test sees at once. False: a guest reboot resets the machine and QEMU runs on, through firmware into the
    /// same <see cref="Kernel"/> (or <see cref="BootMedia"/>) again, as a real machine reboots (the lab's relays, whose agent
    /// reboots into stboot on a reboot command); the serial console file is kept and keeps growing.
    /// </summary>
    public bool ExitOnReboot { get; init; } = true;
}
