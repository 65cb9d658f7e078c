using System.Text.RegularExpressions;
using Tabula.Linux;

namespace Tabula.Machine.Mounts;

/// <summary>The pseudo file systems PID 1 needs (a seam: host tests of stboot mount nothing).</summary>
public interface IMounts
{
    /// <summary>Mounts them; returns what was mounted, for the console.</summary>
    string MountEssentials();

    /// <summary>Mounts efivarfs if the firmware is UEFI and it is not mounted yet (its module may load only after
    /// <see cref="MountEssentials"/>); true when it is mounted.</summary>
    bool MountEfiVariables();
}

/// <summary>A file system PID 1 mounts: source, target, type and flags for mount(2).</summary>
public sealed record PseudoMount(string Source, string Target, string Type, MountFlags Flags);

/// <summary>What an amnesia check found: facts for the console and the violations that forbid keeping data.</summary>
public sealed record AmnesiaReport(IReadOnlyList<string> Facts, IReadOnlyList<string> Violations)
{
    /// <summary>No violation.</summary>
    public bool Clean => Violations.Count == 0;
}

/// <summary>
/// Mounts of a Tabula machine, all through one gate, and the amnesia checks (ARCHITECTURE: "No block device is
/// mounted, ever"). Both PID-1 programs mount only pseudo file systems; the gate refuses any block device whoever
/// asks, and the checks read the kernel's own view rather than trusting our code paths:
/// <list type="bullet">
/// <item>the root file system is the initramfs (rootfs, tmpfs or ramfs in /proc/mounts);</item>
/// <item>nothing backed by a block device is mounted (a mount whose source is a block device node, links resolved);</item>
/// <item>no swap (/proc/swaps lists none), so RAM never reaches a disk;</item>
/// <item>no core dumps (<see cref="DisableCoreDumps"/>): RLIMIT_CORE 0, core_pattern piped to nothing, suid_dumpable 0;</item>
/// <item>kernel command-line requests for a disk (root=, resume=, swap…) are reported as ignored.</item>
/// </list>
/// <paramref name="root"/> is "/" on a machine and a temporary folder in tests; <paramref name="report"/> gets one
/// line per amnesia event (the relay prints them as <c>amnesia</c> lines).
/// </summary>
public sealed partial class MachineMounts(string root, Action<string> report) : IMounts
{
    const UnixFileMode DirectoryMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
        | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;

    /// <summary>
    /// u-root's order: devtmpfs on /dev first (for /dev/kmsg and /dev/urandom), proc, sysfs, a tmpfs on /run.
    /// </summary>
    public static readonly IReadOnlyList<PseudoMount> Essentials =
    [
        new("devtmpfs", "/dev", "devtmpfs", MountFlags.NoSetUid),
        new("proc", "/proc", "proc", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
        new("sysfs", "/sys", "sysfs", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
        new("tmpfs", "/run", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices),
    ];

    /// <summary>A tmpfs on /tmp (the relay's programs want one).</summary>
    public static readonly PseudoMount Tmp = new("tmpfs", "/tmp", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices);

    /// <summary>securityfs on /sys/kernel/security: stboot reads the kernel's lockdown mode there (issue 20).</summary>
    public static readonly PseudoMount SecurityFs = new("securityfs", "/sys/kernel/security", "securityfs",
        MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute);

    /// <summary>Lines read from /proc/mounts and /proc/swaps at most.</summary>
    const int MaxLines = 10_000;

    /// <summary>Extra mounts after <see cref="Essentials"/> (the relay adds <see cref="Tmp"/>).</summary>
    public IReadOnlyList<PseudoMount> Extra { get; init; } = [];

    /// <summary>Mount securityfs (best effort), where the kernel shows its lockdown mode.</summary>
    public bool SecurityFileSystem { get; init; }

    /// <summary>Mount efivarfs where the firmware is UEFI (stboot reads the STHostConfig variable there).</summary>
    public bool EfiVariables { get; init; }

    /// <summary>
    /// <see cref="Essentials"/>, <see cref="Extra"/>, then efivarfs if asked for and the firmware is UEFI (best effort:
    /// absent on BIOS machines and in QEMU without OVMF). A target that is already mounted (EBUSY: a retry after a
    /// partial first attempt) counts as mounted. Returns the targets, comma-separated ("efivarfs" for the last).
    /// </summary>
    public string MountEssentials()
    {
        var mounted = new List<string>();
        foreach (var mount in Essentials.Concat(Extra))
        {
            Mount(mount);
            mounted.Add(mount.Target);
        }
        if (EfiVariables && MountEfiVariables())
            mounted.Add("efivarfs");
        if (SecurityFileSystem)
        {
            try
            {
                Mount(SecurityFs);
                mounted.Add(SecurityFs.Target);
            }
            catch (LinuxException) { /* a kernel without securityfs: the lockdown mode reads as unknown */ }
        }
        return string.Join(',', mounted);
    }

    /// <summary>
    /// efivarfs at /sys/firmware/efi/efivars when the firmware is UEFI (best effort: absent on BIOS machines and in QEMU
    /// without OVMF, and ENODEV until the efivarfs module is loaded: Debian builds it as one, so stboot asks again after
    /// coldplug). EBUSY (mounted already) counts as mounted.
    /// </summary>
    public bool MountEfiVariables()
    {
        if (!Directory.Exists(Path.Combine(root, "sys/firmware/efi")))
            return false;
        try
        {
            MountPoint.Mount("efivarfs", Linux.Efi.EfiVariables.DefaultDirectory, "efivarfs",
                MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute);
            return true;
        }
        catch (LinuxException e) when (e.Errno == Errno.EBUSY) { return true; }
        catch (LinuxException) { return false; /* no efivarfs in this kernel (yet): the host configuration must then be a file */ }
    }

    /// <summary>
    /// The one gate for every mount a Tabula PID 1 makes: a block device is refused (reported, and thrown as
    /// <see cref="MountRefusedException"/>) before the kernel is asked, whatever asked for it.
    /// </summary>
    public void Mount(PseudoMount mount)
    {
        ArgumentNullException.ThrowIfNull(mount);
        if (IsBlockDevice(mount.Source))
        {
            report($"REFUSED mounting {mount.Source} on {mount.Target}: it is a block device");
            throw new MountRefusedException(MountRefusal.BlockDevice, $"refused: {mount.Source} is a block device and the machine keeps nothing on disks");
        }
        try { FileSystem.MakeDirectory(Path.Combine(root, mount.Target.TrimStart('/')), DirectoryMode); }
        catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
        try { MountPoint.Mount(mount.Source, mount.Target, mount.Type, mount.Flags); }
        catch (LinuxException e) when (e.Errno == Errno.EBUSY) { }
    }

    /// <summary>Turns core dumps off (once, early, as PID 1: the limit is inherited by every child).</summary>
    public void DisableCoreDumps()
    {
        ResourceLimits.Set(ResourceLimit.Core, 0, 0);
        // A pipe to a program that does not exist: the kernel drops the dump; no file is ever created.
        File.WriteAllText(Path.Combine(root, "proc/sys/kernel/core_pattern"), "|/nonexistent-core-sink");
        File.WriteAllText(Path.Combine(root, "proc/sys/fs/suid_dumpable"), "0");
        report("core dumps off (RLIMIT_CORE=0, core_pattern piped to nothing, suid_dumpable=0)");
    }

    /// <summary>Reads /proc and reports (after /proc is mounted, and again periodically).</summary>
    public AmnesiaReport Check()
    {
        var facts = new List<string>();
        var violations = new List<string>();
        foreach (var (source, target, type) in MountTable())
        {
            if (target == "/")
            {
                if (type is "rootfs" or "tmpfs" or "ramfs")
                    facts.Add($"root is {type} (RAM)");
                else
                    violations.Add($"root file system is {type} from {source}, not the initramfs");
            }
            if (IsBlockDevice(source))
                violations.Add($"block device {source} is mounted on {target}");
        }
        int swaps = SwapCount();
        if (swaps == 0) facts.Add("no swap");
        else violations.Add($"{swaps} swap area(s) active");
        foreach (string word in CommandLine())
        {
            if (word.StartsWith("root=", StringComparison.Ordinal) || word.StartsWith("resume=", StringComparison.Ordinal)
                || word.StartsWith("swap", StringComparison.Ordinal))
                facts.Add($"ignored kernel argument \"{word}\": the machine never mounts or swaps to a disk");
        }
        return new AmnesiaReport(facts, violations);
    }

    /// <summary>Reports every fact and violation of <paramref name="result"/>.</summary>
    public void Report(AmnesiaReport result)
    {
        ArgumentNullException.ThrowIfNull(result);
        foreach (string fact in result.Facts) report(fact);
        foreach (string violation in result.Violations) report($"VIOLATION {violation}");
    }

    IEnumerable<(string Source, string Target, string Type)> MountTable()
    {
        string path = Path.Combine(root, "proc/mounts");
        if (!File.Exists(path)) yield break;
        foreach (string line in File.ReadLines(path).Take(MaxLines))
        {
            string[] fields = line.Split(' ');
            if (fields.Length >= 3)
                yield return (Unescape(fields[0]), Unescape(fields[1]), fields[2]);
        }
    }

    int SwapCount()
    {
        string path = Path.Combine(root, "proc/swaps");
        // The first line is a header: "Filename Type Size Used Priority".
        return File.Exists(path) ? File.ReadLines(path).Skip(1).Take(MaxLines).Count(l => l.Trim().Length > 0) : 0;
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
        ? Octal().Replace(field, m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString())
        : field;

    [GeneratedRegex(@"\\([0-7]{3})")]
    private static partial Regex Octal();
}
