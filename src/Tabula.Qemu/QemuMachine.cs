using System.Diagnostics;
using System.Globalization;

namespace Tabula.Qemu;

/// <summary>
/// One machine in QEMU (<see cref="QemuOptions"/>), its serial console followed from the file (<see cref="SerialConsole"/>).
/// Two lifetimes: <see cref="Start"/> runs QEMU as a child that <see cref="Dispose"/> kills (tests, benches);
/// <see cref="StartDetached"/> lets QEMU daemonize so it outlives the caller (the lab), and Dispose only stops
/// following the console. Inside a namespace QEMU is started through <c>ip netns exec</c>, which execs it, so the pid
/// and the process killed are QEMU's own.
/// </summary>
public sealed class QemuMachine : IDisposable
{
    readonly Process? child;
    readonly SerialConsole console;
    readonly Stopwatch clock;
    readonly List<string> qemuOutput = [];

    QemuMachine(QemuOptions options, IReadOnlyList<string> command, int pid, Process? child, Stopwatch clock, long consoleOffset = 0)
    {
        Options = options;
        Command = QemuArguments.Show(command);
        Pid = pid;
        this.child = child;
        this.clock = clock;
        console = new SerialConsole(options.ConsoleLog, clock, consoleOffset);
    }

    /// <summary>What was started.</summary>
    public QemuOptions Options { get; }

    /// <summary>The machine's name.</summary>
    public string Name => Options.Name;

    /// <summary>The serial console file.</summary>
    public string ConsoleLog => Options.ConsoleLog;

    /// <summary>The command line QEMU was started with, as a shell would show it.</summary>
    public string Command { get; }

    /// <summary>QEMU's pid.</summary>
    public int Pid { get; }

    /// <summary>Time since QEMU was started.</summary>
    public TimeSpan Elapsed => clock.Elapsed;

    /// <summary>The console, line by line with arrival times.</summary>
    public SerialConsole Serial => console;

    /// <summary>The console so far, one string.</summary>
    public string Console => string.Join('\n', console.Lines.Select(l => l.Line));

    /// <summary>True while QEMU runs (for a detached machine: while its pid is a QEMU writing this console).</summary>
    public bool Running => child is not null
        ? !child.HasExited
        : ReadCommandLine(Pid) is { } line && line.Contains(ConsoleLog, StringComparison.Ordinal);

    /// <summary>Starts QEMU as a child process; <see cref="Dispose"/> kills it. The console file is created empty.</summary>
    public static QemuMachine Start(QemuOptions options)
    {
        var command = Prepare(options, pidFile: null);
        var start = StartInfo(command);
        var clock = Stopwatch.StartNew();
        Process process;
        try { process = Process.Start(start) ?? throw new QemuException(QemuFailure.StartFailed, $"{options.Name}: could not start QEMU"); }
        catch (System.ComponentModel.Win32Exception e) { throw new QemuException(QemuFailure.StartFailed, $"{options.Name}: could not start QEMU: {e.Message}", e); }
        process.StandardInput.Close();
        var machine = new QemuMachine(options, command, process.Id, process, clock);
        // QEMU's own messages (not the guest's): kept for failure messages.
        process.OutputDataReceived += (_, e) => machine.OnQemuOutput(e.Data);
        process.ErrorDataReceived += (_, e) => machine.OnQemuOutput(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return machine;
    }

    /// <summary>
    /// Starts QEMU daemonized (<c>-daemonize -pidfile</c>), so it outlives the caller; returns once it has daemonized.
    /// The pid file goes next to the console. <see cref="Dispose"/> stops following the console; QEMU runs on.
    /// </summary>
    public static QemuMachine StartDetached(QemuOptions options)
    {
        string directory = Path.GetDirectoryName(Path.GetFullPath(options.ConsoleLog))!;
        Directory.CreateDirectory(directory);
        string pidFile = Path.Combine(directory, "qemu.pid");
        File.Delete(pidFile);
        var command = Prepare(options, pidFile);
        var start = StartInfo(command);
        var clock = Stopwatch.StartNew();
        try
        {
            using var process = Process.Start(start) ?? throw new QemuException(QemuFailure.StartFailed, $"{options.Name}: could not start QEMU");
            process.StandardInput.Close();
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(TimeSpan.FromSeconds(60)))
            {
                process.Kill(entireProcessTree: true);
                throw new QemuException(QemuFailure.StartFailed, $"{options.Name}: QEMU did not daemonize within 60 s: {QemuArguments.Show(command)}");
            }
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new QemuException(QemuFailure.StartFailed,
                    $"{QemuArguments.Show(command)} exited {process.ExitCode}: {(stderr.Result.Trim().Length > 0 ? stderr.Result.Trim() : stdout.Result.Trim())}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new QemuException(QemuFailure.StartFailed, $"{options.Name}: could not start QEMU: {e.Message}", e);
        }
        int pid = int.Parse(File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture);
        return new QemuMachine(options, command, pid, child: null, clock);
    }

    /// <summary>
    /// Follows a detached QEMU started earlier, maybe by another process (<see cref="StartDetached"/>; <paramref name="pid"/> from
    /// its pid file), from its console's current end: only lines written from now on are seen, stamped on a clock started now.
    /// <see cref="Dispose"/> stops following; QEMU runs on. Fails when no QEMU writing <see cref="QemuOptions.ConsoleLog"/> runs
    /// as <paramref name="pid"/>.
    /// </summary>
    public static QemuMachine Attach(QemuOptions options, int pid)
    {
        if (ReadCommandLine(pid) is not { } line || !line.Contains(options.ConsoleLog, StringComparison.Ordinal))
            throw new QemuException(QemuFailure.Exited, $"{options.Name}: no QEMU writing {options.ConsoleLog} runs as pid {pid}");
        long end = File.Exists(options.ConsoleLog) ? new FileInfo(options.ConsoleLog).Length : 0;
        return new QemuMachine(options, [$"(attached to pid {pid})"], pid, child: null, Stopwatch.StartNew(), end);
    }

    static IReadOnlyList<string> Prepare(QemuOptions options, string? pidFile)
    {
        string qemu = FindTool("qemu-system-x86_64") ?? throw new QemuException(QemuFailure.Missing, "qemu-system-x86_64 is missing (package qemu-system-x86)");
        string? ip = options.Namespace is null ? null : FindTool("ip") ?? throw new QemuException(QemuFailure.Missing, "ip is missing (package iproute2)");
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(options.ConsoleLog))!);
        File.WriteAllText(options.ConsoleLog, "");
        return QemuArguments.Command(options, qemu, ip, pidFile);
    }

    static ProcessStartInfo StartInfo(IReadOnlyList<string> command)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string argument in command.Skip(1))
            start.ArgumentList.Add(argument);
        return start;
    }

    void OnQemuOutput(string? line)
    {
        if (line is null)
            return;
        lock (qemuOutput)
            if (qemuOutput.Count < 1000)
                qemuOutput.Add(line);
    }

    /// <summary>The first console line so far that contains <paramref name="text"/>.</summary>
    public (TimeSpan At, string Line)? Find(string text) => console.Find(l => l.Contains(text, StringComparison.Ordinal));

    /// <summary>
    /// Waits for a console line that <paramref name="matches"/> (<paramref name="what"/> names it in the failure) and
    /// returns it with its arrival time. Fails with the console tail when the timeout passes or QEMU exits first.
    /// </summary>
    public Task<(TimeSpan At, string Line)> WaitForAsync(Func<string, bool> matches, string what, TimeSpan timeout,
        CancellationToken ct = default) => WaitForAsync(matches, what, timeout, TimeSpan.Zero, ct);

    /// <summary>
    /// Waits for a console line that <paramref name="matches"/> and arrived at or after <paramref name="after"/> (a machine that
    /// reboots with <see cref="QemuOptions.ExitOnReboot"/> false writes every boot into one console).
    /// </summary>
    public async Task<(TimeSpan At, string Line)> WaitForAsync(Func<string, bool> matches, string what, TimeSpan timeout, TimeSpan after,
        CancellationToken ct)
    {
        var deadline = clock.Elapsed + timeout;
        while (true)
        {
            if (console.Find(matches, after) is { } found)
                return found;
            if (!Running)
            {
                // Lines QEMU wrote just before it exited.
                await Task.Delay(SerialConsole.PollInterval * 2, ct);
                if (console.Find(matches, after) is { } last)
                    return last;
                throw Failure(QemuFailure.Exited, $"{Name}: QEMU exited before {what}");
            }
            if (clock.Elapsed > deadline)
                throw Failure(QemuFailure.Timeout, $"{Name}: no {what} within {timeout.TotalSeconds:0}s");
            await Task.Delay(SerialConsole.PollInterval, ct);
        }
    }

    /// <summary>Waits for a console line containing <paramref name="text"/>.</summary>
    public Task<(TimeSpan At, string Line)> WaitForAsync(string text, TimeSpan timeout, CancellationToken ct = default) =>
        WaitForAsync(l => l.Contains(text, StringComparison.Ordinal), $"\"{text}\"", timeout, ct);

    /// <summary><see cref="WaitForAsync(Func{string, bool}, string, TimeSpan, CancellationToken)"/>, blocking.</summary>
    public (TimeSpan At, string Line) WaitFor(Func<string, bool> matches, string what, TimeSpan timeout) =>
        WaitForAsync(matches, what, timeout).GetAwaiter().GetResult();

    /// <summary>Waits for a console line containing <paramref name="text"/>, blocking.</summary>
    public (TimeSpan At, string Line) WaitFor(string text, TimeSpan timeout) => WaitForAsync(text, timeout).GetAwaiter().GetResult();

    /// <summary>Waits for QEMU (a child) to exit, the guest having powered off; returns the elapsed time at exit.</summary>
    public TimeSpan WaitForExit(TimeSpan timeout)
    {
        var process = child ?? throw new InvalidOperationException($"{Name} is detached: its QEMU is not a child");
        if (!process.WaitForExit(timeout))
            throw Failure(QemuFailure.Timeout, $"{Name}: QEMU still running after {timeout.TotalSeconds:0}s");
        process.WaitForExit();
        return clock.Elapsed;
    }

    /// <summary>QEMU's exit code (a child, after <see cref="WaitForExit"/>).</summary>
    public int ExitCode => (child ?? throw new InvalidOperationException($"{Name} is detached: its QEMU is not a child")).ExitCode;

    /// <summary>A failure whose message carries the console tail, QEMU's own output and the command.</summary>
    public QemuException Failure(QemuFailure reason, string what)
    {
        string qemu;
        lock (qemuOutput)
            qemu = qemuOutput.Count == 0 ? "" : "\nQEMU said:\n  " + string.Join("\n  ", qemuOutput.TakeLast(20));
        return new QemuException(reason, $"{what}; console {ConsoleLog}:\n{console.Tail(40)}{qemu}\ncommand: {Command}");
    }

    /// <summary>Stops following the console; a child QEMU is killed (a detached one runs on).</summary>
    public void Dispose()
    {
        if (child is not null)
        {
            try
            {
                if (!child.HasExited)
                {
                    child.Kill(entireProcessTree: true);
                    child.WaitForExit(5000);
                }
            }
            catch (InvalidOperationException) { }
            child.Dispose();
        }
        console.Dispose();
    }

    static string? ReadCommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' '); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    static string? FindTool(string tool) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
}
