using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Tabula.Lab;

/// <summary>
/// One relay machine: QEMU under software emulation (<c>-accel tcg -cpu max</c>, never KVM), 1 GiB, a virtio NIC on
/// its tap in the lab namespace (never QEMU's user networking), the serial console written to a file. QEMU
/// daemonizes (<c>-daemonize -pidfile</c>) so it outlives `lab up`; this object follows the console file and
/// timestamps each line when it first sees it (polled every 100 ms, in the background too, so a line that arrives while
/// the lab runs a staff command gets its real time), so the lab can wait for markers and time stages. Disposing stops
/// following the file; QEMU runs on.
/// </summary>
public sealed class LabMachine : IDisposable
{
    readonly Timer follower;
    readonly List<(TimeSpan At, string Line)> lines = [];
    readonly Stopwatch clock;
    long offset;
    readonly StringBuilder partial = new();

    LabMachine(string name, string consoleLog, int pid, Stopwatch clock)
    {
        Name = name;
        ConsoleLog = consoleLog;
        Pid = pid;
        this.clock = clock;
        follower = new Timer(_ => Poll(), null, TimeSpan.Zero, TimeSpan.FromMilliseconds(100));
    }

    /// <inheritdoc />
    public void Dispose() => follower.Dispose();

    /// <summary>relay-N.</summary>
    public string Name { get; }

    /// <summary>The serial console file.</summary>
    public string ConsoleLog { get; }

    /// <summary>QEMU's pid.</summary>
    public int Pid { get; }

    /// <summary>Starts QEMU in <paramref name="ns"/> on tap <paramref name="tap"/>; returns once QEMU has daemonized. The
    /// console of a previous power-on is kept as console.previous.log.</summary>
    public static LabMachine Start(string name, string ns, string directory, LabKernel kernel, string initramfs, string tap, string mac)
    {
        Directory.CreateDirectory(directory);
        string console = Path.Combine(directory, "console.log");
        string pidFile = Path.Combine(directory, "qemu.pid");
        if (File.Exists(console))
            File.Move(console, Path.Combine(directory, "console.previous.log"), overwrite: true);
        File.WriteAllText(console, "");
        File.Delete(pidFile);
        string qemu = HostProcess.Find("qemu-system-x86_64") ?? throw new LabException("qemu-system-x86_64 is missing (package qemu-system-x86)");
        var clock = Stopwatch.StartNew();
        HostProcess.Run(LabNetwork.Exec(ns, [qemu,
            "-name", name, "-accel", "tcg", "-cpu", "max", "-m", "1024", "-display", "none", "-no-reboot", "-nodefaults",
            "-serial", "file:" + console, "-monitor", "none",
            "-kernel", kernel.KernelPath, "-initrd", initramfs, "-append", "console=ttyS0 panic=-1 quiet",
            "-netdev", $"tap,id=n0,ifname={tap},script=no,downscript=no", "-device", $"virtio-net-pci,netdev=n0,mac={mac}",
            "-daemonize", "-pidfile", pidFile]), timeout: TimeSpan.FromSeconds(60));
        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), CultureInfo.InvariantCulture);
        return new LabMachine(name, console, pid, clock);
    }

    /// <summary>Seconds since QEMU was started.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    /// <summary>True while QEMU runs.</summary>
    public bool Running => HostProcess.CommandLine(Pid) is { } line && line.Contains(ConsoleLog, StringComparison.Ordinal);

    /// <summary>Reads what QEMU appended to the console since the last call.</summary>
    void Poll()
    {
        lock (lines)
            PollLocked();
    }

    void PollLocked()
    {
        using var file = new FileStream(ConsoleLog, FileMode.Open, FileAccess.Read, FileShare.ReadWrite);
        if (file.Length <= offset)
            return;
        file.Position = offset;
        byte[] buffer = new byte[file.Length - offset];
        int read = file.ReadAtLeast(buffer, buffer.Length, throwOnEndOfStream: false);
        offset += read;
        partial.Append(Encoding.UTF8.GetString(buffer, 0, read));
        string text = partial.ToString();
        int end = text.LastIndexOf('\n');
        if (end < 0)
            return;
        foreach (string line in text[..end].Split('\n'))
            lines.Add((clock.Elapsed, line.TrimEnd('\r')));
        partial.Clear().Append(text[(end + 1)..]);
    }

    /// <summary>The first console line that is the event <paramref name="marker"/>, if it has appeared.</summary>
    public (TimeSpan At, string Line)? Find(ConsoleMarker marker)
    {
        lock (lines)
        {
            PollLocked();
            foreach (var line in lines)
                if (marker.Matches(line.Line))
                    return line;
            return null;
        }
    }

    /// <summary>Every console line so far that is the event <paramref name="marker"/>.</summary>
    public IReadOnlyList<(TimeSpan At, string Line)> FindAll(ConsoleMarker marker)
    {
        lock (lines)
        {
            PollLocked();
            return [.. lines.Where(l => marker.Matches(l.Line))];
        }
    }

    /// <summary>
    /// Waits for a console line that is the event <paramref name="marker"/>. Fails with the console tail when the timeout
    /// passes or QEMU exits (stboot or the agent printing FAILED is shown in the tail).
    /// </summary>
    public async Task<(TimeSpan At, string Line)> WaitForAsync(ConsoleMarker marker, TimeSpan timeout, CancellationToken ct)
    {
        var deadline = clock.Elapsed + timeout;
        while (true)
        {
            if (Find(marker) is { } found)
                return found;
            if (!Running)
                throw Failure($"{Name}: QEMU exited before \"{marker}\"");
            if (clock.Elapsed > deadline)
                throw Failure($"{Name}: no \"{marker}\" within {timeout.TotalSeconds:0}s");
            await Task.Delay(200, ct);
        }
    }

    /// <summary>The last console line (for progress display), or "".</summary>
    public string LastLine
    {
        get
        {
            lock (lines)
            {
                PollLocked();
                return lines.Count == 0 ? "" : lines[^1].Line;
            }
        }
    }

    LabException Failure(string what)
    {
        string tail;
        lock (lines)
        {
            PollLocked();
            tail = string.Join('\n', lines.TakeLast(25).Select(l => $"  [{l.At.TotalSeconds,7:0.0}s] {l.Line}"));
        }
        return new LabException($"{what}; console {ConsoleLog}:\n{tail}");
    }

    /// <summary>stboot's timeline (stage → ms) from its <c>tabula-boot: timeline</c> line, or empty.</summary>
    public IReadOnlyDictionary<string, long> StbootTimeline()
    {
        var timeline = new Dictionary<string, long>(StringComparer.Ordinal);   // in stboot's order
        if (Find(ConsoleMarker.Boot("timeline")) is not { } found || ConsoleLine.TryParse(found.Line) is not { } line)
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
