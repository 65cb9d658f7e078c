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
/// What a machine boots and how it is wired. Always software emulation (<c>-accel tcg -cpu max</c>: KVM crashes on
/// the machines this runs on), no display, no monitor, no reboot (a guest reboot or poweroff ends QEMU), no default
/// devices, the serial console to <see cref="ConsoleLog"/>.
/// </summary>
/// <param name="Name">The machine's name (<c>-name</c>, and in messages).</param>
/// <param name="Kernel">The bzImage (<c>-kernel</c>).</param>
/// <param name="Initramfs">The initramfs (<c>-initrd</c>).</param>
/// <param name="CommandLine">The kernel command line (<c>-append</c>); arguments after "--" reach /init.</param>
/// <param name="ConsoleLog">The file the serial console is written to (created or truncated at start).</param>
public sealed record QemuOptions(string Name, string Kernel, string Initramfs, string CommandLine, string ConsoleLog)
{
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
}
