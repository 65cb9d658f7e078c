using System.Globalization;
using Tabula.Qemu;

namespace Tabula.Lab;

/// <summary>
/// One relay machine, started with Tabula.Qemu's launcher: software emulation only (<c>-accel tcg -cpu max</c>, never
/// KVM), 1 GiB, a virtio NIC on its tap in the lab namespace (never QEMU's user networking), the serial console written
/// to a file. QEMU daemonizes (<see cref="QemuMachine.StartDetached"/>) so it outlives `lab up`; the launcher follows the
/// console file and stamps each line when it first sees it, so the lab can wait for stboot's and the agent's console
/// lines (<see cref="ConsoleMarker"/>) and time stages. This type adds those markers and the lab's failure type.
/// Disposing stops following the file; QEMU runs on.
/// </summary>
public sealed class LabMachine : IDisposable
{
    readonly QemuMachine qemu;

    LabMachine(QemuMachine qemu) => this.qemu = qemu;

    /// <inheritdoc />
    public void Dispose() => qemu.Dispose();

    /// <summary>relay-N.</summary>
    public string Name => qemu.Name;

    /// <summary>The serial console file.</summary>
    public string ConsoleLog => qemu.ConsoleLog;

    /// <summary>QEMU's pid.</summary>
    public int Pid => qemu.Pid;

    /// <summary>Starts QEMU in <paramref name="ns"/> on tap <paramref name="tap"/>; returns once QEMU has daemonized
    /// (its pid in qemu.pid next to the console). The console of a previous power-on is kept as console.previous.log.
    /// <paramref name="firmware"/> (<see cref="LabFirmware"/>): bios boots <paramref name="kernel"/> with the directory's
    /// stboot.cpio.gz; uefi boots OVMF (its Secure Boot build with <paramref name="secureBoot"/>) with the directory's ESP and
    /// variable store. <paramref name="tpm"/>: the machine's TPM 2.0 (an swtpm already listening, <see cref="LabTpm.PowerOn"/>), or none.</summary>
    public static LabMachine Start(string name, string ns, string directory, LabKernel kernel, string tap, string mac,
        QemuTpm? tpm = null, string firmware = LabFirmware.Bios, bool secureBoot = false)
    {
        Directory.CreateDirectory(directory);
        string console = Path.Combine(directory, "console.log");
        if (File.Exists(console))
            File.Move(console, Path.Combine(directory, "console.previous.log"), overwrite: true);
        var options = LabFirmware.Options(name, directory, kernel, console, firmware, secureBoot) with
        {
            MemoryMiB = 1024,
            Namespace = ns,
            Nic = new QemuNic(tap, mac),
            // A reboot command makes the agent reboot(2) into firmware and stboot (issue 18): QEMU must run on across it.
            ExitOnReboot = false,
            Tpm = tpm,
        };
        try { return new LabMachine(QemuMachine.StartDetached(options)); }
        catch (QemuException e) { throw new LabException(e.Message, e); }
    }

    /// <summary>
    /// Follows relay <paramref name="name"/>'s running QEMU (started by `lab up`, pid <paramref name="pid"/>) from its console's
    /// current end on, without touching the machine: a reboot command reboots it inside the same QEMU, and every boot writes to
    /// the same console file.
    /// </summary>
    public static LabMachine Attach(string name, string directory, int pid)
    {
        var options = new QemuOptions(name, null, null, null, Path.Combine(directory, "console.log"));
        try { return new LabMachine(QemuMachine.Attach(options, pid)); }
        catch (QemuException e) { throw new LabException(e.Message, e); }
    }

    /// <summary>Time since QEMU was started (attached: since following began).</summary>
    public TimeSpan Elapsed => qemu.Elapsed;

    /// <summary>True while QEMU runs.</summary>
    public bool Running => qemu.Running;

    /// <summary>The first console line that is the event <paramref name="marker"/>, if it has appeared.</summary>
    public (TimeSpan At, string Line)? Find(ConsoleMarker marker) => qemu.Serial.Find(marker.Matches);

    /// <summary>The first console line at or after <paramref name="after"/> that is the event <paramref name="marker"/>, if any.</summary>
    public (TimeSpan At, string Line)? Find(ConsoleMarker marker, TimeSpan after) => qemu.Serial.Find(marker.Matches, after);

    /// <summary>Every console line so far that is the event <paramref name="marker"/>.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> FindAll(ConsoleMarker marker) => qemu.Serial.FindAll(marker.Matches);

    /// <summary>
    /// Waits for a console line that is the event <paramref name="marker"/>. Fails with the console tail when the timeout
    /// passes or QEMU exits (stboot or the agent printing FAILED is shown in the tail).
    /// </summary>
    public async Task<(TimeSpan At, string Line)> WaitForAsync(ConsoleMarker marker, TimeSpan timeout, CancellationToken ct,
        TimeSpan after = default)
    {
        try { return await qemu.WaitForAsync(marker.Matches, $"\"{marker}\"", timeout, after, ct); }
        catch (QemuException e) { throw new LabException(e.Message, e); }
    }

    /// <summary>The last console line (for progress display), or "".</summary>
    public string LastLine => qemu.Serial.LastLine;

    /// <summary>The platform stboot reported on its first <c>stage:config</c> line at or after <paramref name="after"/>, or null.</summary>
    public RelayPlatform? StbootPlatform(TimeSpan after = default) =>
        Find(ConsoleMarker.Boot("stage:config"), after) is { } found && ConsoleLine.TryParse(found.Line) is { } line
            ? new RelayPlatform(line.Field("firmware"), line.Field("secure_boot"), line.Field("lockdown"), line.Field("host_config"))
            : null;

    /// <summary>stboot's timeline (stage → ms) from its first <c>tabula-boot: timeline</c> line at or after <paramref name="after"/>
    /// (the boot that began then), or empty.</summary>
    public IReadOnlyDictionary<string, long> StbootTimeline(TimeSpan after = default)
    {
        var timeline = new Dictionary<string, long>(StringComparer.Ordinal);   // in stboot's order
        if (Find(ConsoleMarker.Boot("timeline"), after) is not { } found || ConsoleLine.TryParse(found.Line) is not { } line)
            return timeline;
        foreach (string field in line.Detail.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = field.IndexOf('=');
            if (eq > 0 && field.EndsWith("ms", StringComparison.Ordinal)
                && long.TryParse(field[(eq + 1)..^2], NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
                timeline[field[..eq]] = ms;
        }
        return timeline;
    }
}
