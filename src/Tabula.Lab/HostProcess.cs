using System.Diagnostics;

namespace Tabula.Lab;

/// <summary>
/// Host programs the lab drives (ip, QEMU, wireguard-go, wg, the tabula CLI itself): run-and-wait with the output
/// captured, and start-detached for the background processes that outlive `lab up`. Detached processes get their
/// own session (setsid), stdin from /dev/null and stdout/stderr appended to a log file, so they never hold the
/// caller's pipes open (a script or test reading `lab up`'s output sees EOF when `up` exits).
/// </summary>
public static class HostProcess
{
    /// <summary>The full path of <paramref name="tool"/> on PATH (or in /usr/sbin, /sbin), or null.</summary>
    public static string? Find(string tool)
    {
        if (tool.Contains('/'))
            return File.Exists(tool) ? tool : null;
        return (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
            .Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a command to completion; returns stdout. Throws <see cref="LabException"/> with stderr on failure.</summary>
    public static string Run(IReadOnlyList<string> command, string? stdin = null, IDictionary<string, string>? environment = null,
        TimeSpan? timeout = null)
    {
        var (code, stdout, stderr) = TryRun(command, stdin, environment, timeout);
        if (code != 0)
            throw new LabException($"{string.Join(' ', command)} exited {code}: {(stderr.Trim().Length > 0 ? stderr.Trim() : stdout.Trim())}");
        return stdout;
    }

    /// <summary>Runs a command to completion; returns its exit code and output.</summary>
    public static (int Code, string Stdout, string Stderr) TryRun(IReadOnlyList<string> command, string? stdin = null,
        IDictionary<string, string>? environment = null, TimeSpan? timeout = null)
    {
        var start = new ProcessStartInfo(command[0])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true, UseShellExecute = false,
        };
        foreach (string argument in command.Skip(1))
            start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        Process process;
        try { process = Process.Start(start) ?? throw new LabException($"could not start {command[0]}"); }
        catch (System.ComponentModel.Win32Exception e) { throw new LabException($"could not start {command[0]}: {e.Message}", e); }
        using (process)
        {
            var stderr = process.StandardError.ReadToEndAsync();
            var stdout = process.StandardOutput.ReadToEndAsync();
            if (stdin is not null)
                process.StandardInput.Write(stdin);
            process.StandardInput.Close();
            if (!process.WaitForExit(timeout ?? TimeSpan.FromMinutes(2)))
            {
                process.Kill(entireProcessTree: true);
                throw new LabException($"{string.Join(' ', command)} did not finish within {(timeout ?? TimeSpan.FromMinutes(2)).TotalSeconds:0}s");
            }
            process.WaitForExit();
            return (process.ExitCode, stdout.Result, stderr.Result);
        }
    }

    /// <summary>
    /// Starts <paramref name="command"/> in the background (own session, output appended to <paramref name="log"/>) and
    /// returns its pid. <c>setsid</c> and <c>ip netns exec</c> both exec, so the pid is the program's own.
    /// </summary>
    public static int StartDetached(IReadOnlyList<string> command, string log, string workingDirectory,
        IDictionary<string, string>? environment = null)
    {
        string setsid = Find("setsid") ?? throw new LabException("setsid is missing (util-linux)");
        var shell = new List<string> { "/bin/sh", "-c", "\"$@\" </dev/null >>\"$0\" 2>&1 & echo $!", log, setsid };
        shell.AddRange(command);
        var start = new ProcessStartInfo(shell[0])
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory,
        };
        foreach (string argument in shell.Skip(1))
            start.ArgumentList.Add(argument);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            start.Environment[key] = value;
        using var process = Process.Start(start) ?? throw new LabException("could not start /bin/sh");
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return int.TryParse(stdout.Trim(), out int pid)
            ? pid
            : throw new LabException($"starting {string.Join(' ', command)} printed no pid: {stdout} {process.StandardError.ReadToEnd()}");
    }

    /// <summary>The NUL-separated command line of <paramref name="pid"/> joined by spaces, or null when it is gone.</summary>
    public static string? CommandLine(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ').Trim(); }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }

    /// <summary>
    /// Stops <paramref name="pid"/> if it is still the process we started (its command line contains
    /// <paramref name="marker"/>, so a recycled pid is left alone): SIGTERM, then SIGKILL after <paramref name="grace"/>.
    /// Returns true when it was running.
    /// </summary>
    public static bool Stop(int pid, string marker, TimeSpan grace)
    {
        if (CommandLine(pid) is not { } line || !line.Contains(marker, StringComparison.Ordinal))
            return false;
        Process process;
        try { process = Process.GetProcessById(pid); }
        catch (ArgumentException) { return false; }
        using (process)
        {
            TryRun(["kill", "-TERM", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            if (!process.WaitForExit(grace))
            {
                TryRun(["kill", "-KILL", pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]);
                process.WaitForExit(TimeSpan.FromSeconds(5));
            }
        }
        return true;
    }

    /// <summary>Pids of every process whose command line contains <paramref name="marker"/> (other than this one).</summary>
    public static IReadOnlyList<int> FindByCommandLine(string marker)
    {
        var found = new List<int>();
        foreach (string dir in Directory.EnumerateDirectories("/proc"))
            if (int.TryParse(Path.GetFileName(dir), out int pid) && pid != Environment.ProcessId
                && CommandLine(pid) is { } line && line.Contains(marker, StringComparison.Ordinal))
                found.Add(pid);
        return found;
    }
}
