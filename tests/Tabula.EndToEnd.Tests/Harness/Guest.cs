using Tabula.Qemu;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// The E2E tests' guests, on Tabula.Qemu's launcher: a child QEMU (killed on dispose) under TCG, a virtio NIC on the
/// test's tap inside its namespace (never user networking) or no NIC, the serial console in out/e2e/logs/NAME.log.
/// Waits read stboot's and the agent's lines with the one console-line parser (<see cref="ConsoleMarker"/>).
/// </summary>
internal static class Guest
{
    /// <summary>The guest NIC's MAC address unless a test gives its own.</summary>
    public const string DefaultMac = "52:54:00:7a:b0:01";

    /// <summary>Boots <paramref name="kernel"/> with <paramref name="initramfs"/>; <paramref name="commandLine"/> after
    /// "--" reaches /init. <paramref name="disk"/> is a raw image attached as a virtio block device; <paramref name="tpm"/>
    /// a TPM 2.0 (tpm-tis) backed by an swtpm (<see cref="GuestTpm"/>).</summary>
    public static QemuMachine Start(string name, string kernel, string initramfs, string commandLine, TapNetwork? network = null,
        string? disk = null, string mac = DefaultMac, QemuTpm? tpm = null) =>
        QemuMachine.Start(new QemuOptions(name, kernel, initramfs, commandLine, RepositoryPaths.Out("logs", name + ".log"))
        {
            MemoryMiB = 1024,
            Namespace = network?.Namespace.Name,
            Nic = network is null ? null : new QemuNic(network.Tap, mac),
            Disk = disk,
            Tpm = tpm,
        });

    /// <summary>Boots <paramref name="media"/> with UEFI <paramref name="firmware"/> (OVMF, q35), the NIC on the test's tap.</summary>
    public static QemuMachine StartUefi(string name, QemuFirmware firmware, QemuBootMedia media, TapNetwork? network = null, string mac = DefaultMac) =>
        QemuMachine.Start(QemuOptions.Uefi(name, firmware, media, RepositoryPaths.Out("logs", name + ".log")) with
        {
            MemoryMiB = 1024,
            Namespace = network?.Namespace.Name,
            Nic = network is null ? null : new QemuNic(network.Tap, mac),
        });

    /// <summary>Waits for the console line that is the event <paramref name="marker"/>.</summary>
    public static (TimeSpan At, string Line) WaitFor(this QemuMachine machine, ConsoleMarker marker, TimeSpan timeout) =>
        machine.WaitFor(marker.Matches, $"\"{marker}\"", timeout);
}
