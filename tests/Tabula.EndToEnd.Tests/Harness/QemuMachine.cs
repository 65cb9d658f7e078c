using System.Diagnostics;
using System.Text;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>What a guest boots from and how it is wired.</summary>
/// <param name="Kernel">The bzImage passed with -kernel.</param>
/// <param name="Initramfs">The initramfs passed with -initrd.</param>
/// <param name="CommandLine">-append; arguments after "--" reach /init.</param>
/// <param name="Network">A tap network to attach a virtio-net NIC to, or null for no NIC.</param>
public sealed record QemuOptions(string Kernel, string Initramfs, string CommandLine, TapNetwork? Network = null)
{
    /// <summary>Guest memory in MiB.</summary>
    public int MemoryMiB { get; init; } = 1024;

    /// <summary>The guest NIC's MAC address.</summary>
    public string Mac { get; init; } = "52:54:00:7a:b0:01";

    /// <summary>A raw disk image attached as a virtio block device (the relay's amnesia test hashes it after), or null.</summary>
    public string? Disk { get; init; }
}

/// <summary>
/// One QEMU guest under software emulation (<c>-accel tcg -cpu max</c>; KVM is broken on these machines), with the
/// serial console on stdout. Every console line is kept with its arrival time and written to a log file; tests
/// wait for markers with timeouts. Dispose always kills QEMU. With a tap network, QEMU runs inside its namespace
/// through <c>ip netns exec</c> (which execs QEMU, so the process killed is QEMU itself).
/// </summary>
public sealed class QemuMachine : IDisposable
{
    readonly Process process;
    readonly List<(TimeSpan At, string Line)> lines = [];
    readonly StreamWriter log;
    readonly Stopwatch clock;
    readonly TaskCompletionSource exited = new(TaskCreationOptions.RunContinuationsAsynchronously);

    QemuMachine(Process process, StreamWriter log, Stopwatch clock)
    {
        this.process = process;
        this.log = log;
        this.clock = clock;
    }

    /// <summary>Where the console log is written.</summary>
    public required string LogPath { get; init; }

    /// <summary>Time since QEMU was started.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    /// <summary>The console so far, one string.</summary>
    public string Console
    {
        get { lock (lines) return string.Join('\n', lines.Select(l => l.Line)); }
    }

    /// <summary>Starts QEMU. The log goes to out/e2e/logs/<paramref name="name"/>.log.</summary>
    public static QemuMachine Start(string name, QemuOptions options)
    {
        string qemu = Prerequisites.FindOnPath("qemu-system-x86_64")
            ?? throw new InvalidOperationException("qemu-system-x86_64 is missing (qemu-system-x86)");
        var arguments = new List<string>
        {
            "-accel", "tcg", "-cpu", "max", "-m", options.MemoryMiB.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-nographic", "-no-reboot", "-nodefaults", "-serial", "stdio", "-monitor", "none",
            "-kernel", options.Kernel, "-initrd", options.Initramfs, "-append", options.CommandLine,
        };
        if (options.Network is { } network)
            arguments.AddRange(["-netdev", $"tap,id=n0,ifname={network.Tap},script=no,downscript=no",
                "-device", $"virtio-net-pci,netdev=n0,mac={options.Mac}"]);
        else
            arguments.AddRange(["-nic", "none"]);
        if (options.Disk is { } disk)
            arguments.AddRange(["-drive", $"file={disk},format=raw,if=virtio,cache=writethrough"]);

        var start = new ProcessStartInfo
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        if (options.Network is { } ns)
        {
            start.FileName = Prerequisites.FindOnPath("ip") ?? throw new InvalidOperationException("ip is missing (iproute2)");
            foreach (string a in new[] { "netns", "exec", ns.Namespace.Name, qemu })
                start.ArgumentList.Add(a);
        }
        else
        {
            start.FileName = qemu;
        }
        foreach (string a in arguments)
            start.ArgumentList.Add(a);

        string logPath = RepositoryPaths.Out("logs", name + ".log");
        Directory.CreateDirectory(Path.GetDirectoryName(logPath)!);
        var log = new StreamWriter(logPath, append: false, Encoding.UTF8) { AutoFlush = true };
        log.WriteLine($"# {start.FileName} {string.Join(' ', start.ArgumentList.Select(a => a.Contains(' ') ? $"'{a}'" : a))}");

        var clock = Stopwatch.StartNew();
        var process = new Process { StartInfo = start, EnableRaisingEvents = true };
        var machine = new QemuMachine(process, log, clock) { LogPath = logPath };
        process.OutputDataReceived += (_, e) => machine.OnLine(e.Data);
        process.ErrorDataReceived += (_, e) => machine.OnLine(e.Data is null ? null : "[qemu stderr] " + e.Data);
        process.Exited += (_, _) => machine.exited.TrySetResult();
        process.Start();
        process.StandardInput.Close();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return machine;
    }

    void OnLine(string? line)
    {
        if (line is null)
            return;
        line = line.TrimEnd('\r');
        lock (lines)
        {
            lines.Add((clock.Elapsed, line));
            Monitor.PulseAll(lines);
        }
        lock (log)
            log.WriteLine($"[{clock.Elapsed.TotalSeconds,7:0.000}] {line}");
    }

    /// <summary>
    /// Waits for a console line containing <paramref name="marker"/> and returns it with the time it arrived.
    /// Throws with the console tail when the timeout passes or QEMU exits first.
    /// </summary>
    public (TimeSpan At, string Line) WaitForLine(string marker, TimeSpan timeout) =>
        WaitForLine(line => line.Contains(marker, StringComparison.Ordinal), $"\"{marker}\"", timeout);

    /// <summary>Waits for the console line that is the event <paramref name="marker"/> (read with the one console-line parser).</summary>
    public (TimeSpan At, string Line) WaitForLine(ConsoleMarker marker, TimeSpan timeout) =>
        WaitForLine(marker.Matches, $"\"{marker}\"", timeout);

    (TimeSpan At, string Line) WaitForLine(Func<string, bool> matches, string marker, TimeSpan timeout)
    {
        var deadline = clock.Elapsed + timeout;
        int seen = 0;
        lock (lines)
        {
            while (true)
            {
                for (; seen < lines.Count; seen++)
                    if (matches(lines[seen].Line))
                        return lines[seen];
                if (exited.Task.IsCompleted)
                {
                    // Drain lines that arrived with the exit.
                    Monitor.Wait(lines, TimeSpan.FromMilliseconds(200));
                    for (; seen < lines.Count; seen++)
                        if (matches(lines[seen].Line))
                            return lines[seen];
                    throw Failure($"QEMU exited before {marker}");
                }
                var left = deadline - clock.Elapsed;
                if (left <= TimeSpan.Zero)
                    throw Failure($"no {marker} within {timeout.TotalSeconds:0}s");
                Monitor.Wait(lines, left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
            }
        }
    }

    /// <summary>Waits for QEMU to exit (the guest powered off); returns the elapsed time at exit.</summary>
    public TimeSpan WaitForExit(TimeSpan timeout)
    {
        if (!exited.Task.Wait(timeout))
            throw Failure($"QEMU still running after {timeout.TotalSeconds:0}s");
        process.WaitForExit();
        return clock.Elapsed;
    }

    /// <summary>QEMU's exit code (after <see cref="WaitForExit"/>).</summary>
    public int ExitCode => process.ExitCode;

    Exception Failure(string what)
    {
        string tail;
        lock (lines)
            tail = string.Join('\n', lines.TakeLast(40).Select(l => $"[{l.At.TotalSeconds,7:0.000}] {l.Line}"));
        return new TimeoutException($"{what}; log {LogPath}; console tail:\n{tail}");
    }

    /// <inheritdoc />
    public void Dispose()
    {
        try
        {
            if (!process.HasExited)
            {
                process.Kill(entireProcessTree: true);
                process.WaitForExit(5000);
            }
        }
        catch (InvalidOperationException) { }
        process.Dispose();
        lock (log)
            log.Dispose();
    }
}
