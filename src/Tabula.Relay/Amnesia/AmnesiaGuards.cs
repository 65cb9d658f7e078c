using Tabula.Linux;

namespace Tabula.Relay.Amnesia;

/// <summary>
/// The relay keeps nothing when powered off (ARCHITECTURE: "No block device is mounted, ever"). These guards make
/// that true and check it, reading the kernel's own view rather than trusting our code paths:
/// <list type="bullet">
/// <item>the root file system is the initramfs (rootfs or tmpfs in /proc/mounts);</item>
/// <item>nothing backed by a block device is mounted (any mount whose source is a block device node);</item>
/// <item>no swap (/proc/swaps lists none), so RAM never reaches a disk;</item>
/// <item>no core dumps: RLIMIT_CORE 0 for PID 1 and its children, core_pattern piped to nothing, suid_dumpable 0;</item>
/// <item>kernel command-line requests for a disk (root=, resume=, swap) are reported as ignored.</item>
/// </list>
/// A violation stops the relay from serving: it reports and keeps checking instead of handling customer traffic.
/// </summary>
public sealed class AmnesiaGuards(string root, RelayLog log)
{
    /// <summary>What a check found: facts for the console and the violations that forbid serving.</summary>
    public sealed record Report(IReadOnlyList<string> Facts, IReadOnlyList<string> Violations)
    {
        public bool Clean => Violations.Count == 0;
    }

    /// <summary>Turns core dumps off (call once, early, as PID 1).</summary>
    public void DisableCoreDumps()
    {
        ResourceLimits.Set(ResourceLimit.Core, 0, 0);
        // A pipe to a program that does not exist: the kernel drops the dump; no file is ever created.
        WriteSysctl("proc/sys/kernel/core_pattern", "|/nonexistent-core-sink");
        WriteSysctl("proc/sys/fs/suid_dumpable", "0");
        log.Amnesia("core dumps off (RLIMIT_CORE=0, core_pattern piped to nothing, suid_dumpable=0)");
    }

    /// <summary>Reads /proc and reports (call after mounting /proc, and again periodically).</summary>
    public Report Check()
    {
        var facts = new List<string>();
        var violations = new List<string>();
        foreach (var mount in Mounts())
        {
            if (mount.Target == "/")
            {
                if (mount.Type is "rootfs" or "tmpfs" or "ramfs")
                    facts.Add($"root is {mount.Type} (RAM)");
                else
                    violations.Add($"root file system is {mount.Type} from {mount.Source}, not the initramfs");
            }
            if (IsBlockDevice(mount.Source))
                violations.Add($"block device {mount.Source} is mounted on {mount.Target}");
        }
        int swaps = SwapCount();
        if (swaps == 0) facts.Add("no swap");
        else violations.Add($"{swaps} swap area(s) active");
        foreach (string word in CommandLine())
        {
            if (word.StartsWith("root=", StringComparison.Ordinal) || word.StartsWith("resume=", StringComparison.Ordinal)
                || word.StartsWith("swap", StringComparison.Ordinal))
                facts.Add($"ignored kernel argument \"{word}\": the relay never mounts or swaps to a disk");
        }
        return new Report(facts, violations);
    }

    /// <summary>
    /// The one gate for every mount the agent makes: a block device is refused (and reported), whatever asked for it.
    /// </summary>
    public void Mount(string source, string target, string type, MountFlags flags)
    {
        if (IsBlockDevice(source))
        {
            log.Amnesia($"REFUSED mounting {source} on {target}: it is a block device");
            throw new InvalidOperationException($"refused: {source} is a block device and the relay keeps nothing on disks");
        }
        Directory.CreateDirectory(Path.Combine(root, target.TrimStart('/')));
        MountPoint.Mount(source, target, type, flags);
    }

    public void Log(Report report)
    {
        foreach (string fact in report.Facts) log.Amnesia(fact);
        foreach (string violation in report.Violations) log.Amnesia($"VIOLATION {violation}");
    }

    internal sealed record MountEntry(string Source, string Target, string Type);

    internal IEnumerable<MountEntry> Mounts()
    {
        string path = Path.Combine(root, "proc/mounts");
        if (!File.Exists(path)) yield break;
        foreach (string line in File.ReadLines(path).Take(10_000))
        {
            string[] fields = line.Split(' ');
            if (fields.Length >= 3)
                yield return new MountEntry(Unescape(fields[0]), Unescape(fields[1]), fields[2]);
        }
    }

    int SwapCount()
    {
        string path = Path.Combine(root, "proc/swaps");
        // The first line is a header: "Filename Type Size Used Priority".
        return File.Exists(path) ? File.ReadLines(path).Skip(1).Take(10_000).Count(l => l.Trim().Length > 0) : 0;
    }

    IEnumerable<string> CommandLine()
    {
        string path = Path.Combine(root, "proc/cmdline");
        return File.Exists(path) ? File.ReadAllText(path).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries) : [];
    }

    /// <summary>
    /// A device node path names a block device when the kernel lists its name in /sys/class/block (vda, vda1, loop0,
    /// sr0, nvme0n1p1…); symbolic links (/dev/disk/by-uuid/…) are resolved first. .NET has no stat st_mode type bits,
    /// and the kernel's list is the authority anyway.
    /// </summary>
    internal bool IsBlockDevice(string source)
    {
        if (!source.StartsWith("/dev/", StringComparison.Ordinal)) return false;
        string local = Path.Combine(root, source.TrimStart('/'));
        try
        {
            if (File.ResolveLinkTarget(local, returnFinalTarget: true) is { } target)
                source = target.FullName;
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        string name = Path.GetFileName(source);
        return name.Length > 0 && Directory.Exists(Path.Combine(root, "sys/class/block", name));
    }

    // /proc/mounts escapes space, tab, newline and backslash as octal (\040 …).
    static string Unescape(string field) => field.Contains('\\')
        ? System.Text.RegularExpressions.Regex.Replace(field, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString())
        : field;

    void WriteSysctl(string relative, string value) => File.WriteAllText(Path.Combine(root, relative), value);
}
