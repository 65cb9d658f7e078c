using Tabula.Linux;
using Tabula.Machine.Mounts;

namespace Tabula.Machine.Tests;

/// <summary>
/// The amnesia checks and the mount gate read the kernel's files (/proc/mounts, /proc/swaps, /proc/cmdline, /sys/class/block); here they read
/// the same files laid out under a temporary root, as a machine would see them with and without a disk in use.
/// </summary>
public sealed class MachineMountsTests : IDisposable
{
    readonly string root = Directory.CreateTempSubdirectory("tabula-amnesia-").FullName;
    readonly List<string> reported = [];

    public MachineMountsTests()
    {
        Directory.CreateDirectory(Path.Combine(root, "proc"));
        Directory.CreateDirectory(Path.Combine(root, "sys/class/block/vda"));
        Directory.CreateDirectory(Path.Combine(root, "sys/class/block/vda1"));
        Directory.CreateDirectory(Path.Combine(root, "dev/disk/by-uuid"));
        File.WriteAllText(Path.Combine(root, "dev/vda1"), "");
        File.CreateSymbolicLink(Path.Combine(root, "dev/disk/by-uuid/1234"), Path.Combine(root, "dev/vda1"));
        File.WriteAllText(Path.Combine(root, "proc/swaps"), "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n");
        File.WriteAllText(Path.Combine(root, "proc/cmdline"), "console=ttyS0 panic=-1\n");
    }

    MachineMounts Guards => new(root, reported.Add);

    void Mounts(params string[] lines) => File.WriteAllLines(Path.Combine(root, "proc/mounts"), lines);

    [Fact]
    public void A_ram_only_machine_is_clean()
    {
        Mounts("rootfs / rootfs rw 0 0", "devtmpfs /dev devtmpfs rw,nosuid 0 0", "proc /proc proc rw 0 0", "tmpfs /run tmpfs rw 0 0");
        var report = Guards.Check();
        Assert.True(report.Clean);
        Assert.Contains("root is rootfs (RAM)", report.Facts);
        Assert.Contains("no swap", report.Facts);
    }

    [Fact]
    public void A_mounted_disk_a_disk_root_and_swap_are_violations()
    {
        Mounts("/dev/vda1 / ext4 rw 0 0", "/dev/disk/by-uuid/1234 /mnt\\040data ext4 rw 0 0");
        File.AppendAllText(Path.Combine(root, "proc/swaps"), "/dev/vda2 partition 1048572 0 -2\n");
        File.WriteAllText(Path.Combine(root, "proc/cmdline"), "root=/dev/vda1 resume=/dev/vda2\n");
        var report = Guards.Check();
        Assert.False(report.Clean);
        Assert.Contains(report.Violations, v => v.Contains("root file system is ext4"));
        Assert.Contains(report.Violations, v => v == "block device /dev/vda1 is mounted on /");
        Assert.Contains(report.Violations, v => v == "block device /dev/disk/by-uuid/1234 is mounted on /mnt data");
        Assert.Contains(report.Violations, v => v.Contains("1 swap area"));
        Assert.Contains(report.Facts, f => f.Contains("ignored kernel argument \"root=/dev/vda1\""));
    }

    [Fact]
    public void The_mount_gate_refuses_a_block_device_before_calling_mount()
    {
        var e = Assert.Throws<MountRefusedException>(() => Guards.Mount(new PseudoMount("/dev/vda1", "/mnt", "ext4", MountFlags.None)));
        Assert.Equal(MountRefusal.BlockDevice, e.Reason);
        Assert.Contains("block device", e.Message);
        Assert.Contains(reported, l => l.StartsWith("REFUSED mounting /dev/vda1", StringComparison.Ordinal));
        Assert.Throws<MountRefusedException>(() => Guards.Mount(new PseudoMount("/dev/disk/by-uuid/1234", "/mnt", "ext4", MountFlags.None)));
        Assert.False(Directory.Exists(Path.Combine(root, "mnt")));
    }

    [Fact]
    public void The_real_machine_reports_what_it_has()
    {
        // On the build host the agent's checks run against the real /proc: whatever it finds, it must not throw,
        // and a host with a disk-backed root is never "clean".
        var report = new MachineMounts("/", reported.Add).Check();
        var root = File.ReadLines("/proc/mounts").Select(l => l.Split(' ')).FirstOrDefault(f => f.Length > 2 && f[1] == "/");
        if (root is not null && root[2] is not ("rootfs" or "tmpfs" or "ramfs"))
            Assert.False(report.Clean);
    }

    [Fact]
    public void A_report_lists_facts_then_violations()
    {
        Guards.Report(new AmnesiaReport(["no swap"], ["1 swap area(s) active"]));
        Assert.Equal(["no swap", "VIOLATION 1 swap area(s) active"], reported);
    }

    public void Dispose() => Directory.Delete(root, recursive: true);
}
