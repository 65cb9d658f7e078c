using System.Security.Cryptography;
using Tabula.Packaging.Cpio;

namespace Tabula.Qemu.Tests;

/// <summary>
/// Real TCG boots of the guest kernel with a tiny initramfs (the host's static busybox as /init's shell) that prints a
/// line and powers off: the launcher's console, waits, exit, kill and daemonized lifetime. Run under flock /work/qemu.lock.
/// </summary>
public sealed class QemuMachineTests : IDisposable
{
    static readonly TimeSpan Boot = TimeSpan.FromMinutes(3);
    readonly string dir = $"/var/tmp/tabula-qemu-test-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";

    public void Dispose()
    {
        if (Directory.Exists(dir))
            Directory.Delete(dir, recursive: true);
    }

    /// <summary>An initramfs whose /init runs <paramref name="script"/> with busybox's sh.</summary>
    string Initramfs(string script)
    {
        Directory.CreateDirectory(dir);
        string path = Path.Combine(dir, "initrd.cpio");
        var archive = new CpioArchive()
            .AddDirectory("bin").AddDirectory("dev").AddDirectory("proc")
            .AddCharacterDevice("dev/console", 5, 1)
            .AddFileFrom("bin/busybox", "/bin/busybox", CpioArchive.ExecutableMode)
            .AddSymbolicLink("bin/sh", "busybox")
            .AddFile("init", System.Text.Encoding.ASCII.GetBytes("#!/bin/sh\nexport PATH=/bin\n" + script + "\n"), CpioArchive.ExecutableMode);
        using var file = File.Create(path);
        archive.WriteTo(file);
        return path;
    }

    QemuOptions Guest(string name, string script) =>
        new(name, GuestKernel.Require().KernelPath, Initramfs(script), "console=ttyS0 panic=-1 quiet", Path.Combine(dir, name, "console.log"))
        {
            MemoryMiB = 256,
        };

    static void RequireBusybox()
    {
        if (!File.Exists("/bin/busybox"))
            Assert.Fail("no /bin/busybox: install busybox-static (scripts/setup)");
    }

    [GuestKernelFact(needsRoot: false, "qemu-system-x86_64", "busybox")]
    public void A_child_machine_prints_waits_and_exits_with_its_console_in_the_file()
    {
        RequireBusybox();
        using var machine = QemuMachine.Start(Guest("child", "busybox echo QEMU-TEST-UP $(busybox uname -r)\nbusybox poweroff -f"));
        var up = machine.WaitFor("QEMU-TEST-UP", Boot);
        Assert.True(up.At > TimeSpan.Zero && up.At < machine.Elapsed);
        var exit = machine.WaitForExit(Boot);
        Assert.True(exit >= up.At);
        Assert.Equal(0, machine.ExitCode);
        Assert.Contains("QEMU-TEST-UP " + GuestKernel.Require().Release, File.ReadAllText(machine.ConsoleLog));
        Assert.Contains("QEMU-TEST-UP", machine.Console);
        Assert.False(machine.Running);
        // Waiting for a line that never comes, after QEMU exited, fails at once with the reason and the console tail.
        var error = Assert.Throws<QemuException>(() => machine.WaitFor("never printed", TimeSpan.FromMinutes(1)));
        Assert.Equal(QemuFailure.Exited, error.Reason);
        Assert.Contains("QEMU-TEST-UP", error.Message);
    }

    [GuestKernelFact(needsRoot: false, "qemu-system-x86_64", "busybox")]
    public void A_wait_times_out_with_the_console_tail_and_dispose_kills_the_child()
    {
        RequireBusybox();
        int pid;
        using (var machine = QemuMachine.Start(Guest("stays", "busybox echo QEMU-TEST-WAITING\nwhile true; do busybox sleep 60; done")))
        {
            machine.WaitFor("QEMU-TEST-WAITING", Boot);
            var error = Assert.Throws<QemuException>(() => machine.WaitFor("never printed", TimeSpan.FromSeconds(1)));
            Assert.Equal(QemuFailure.Timeout, error.Reason);
            Assert.Contains("QEMU-TEST-WAITING", error.Message);
            Assert.True(machine.Running);
            pid = machine.Pid;
        }
        Assert.False(File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("qemu", StringComparison.Ordinal));
    }

    [GuestKernelFact(needsRoot: false, "qemu-system-x86_64", "busybox")]
    public async Task A_detached_machine_outlives_its_follower_and_is_followed_through_its_pid()
    {
        RequireBusybox();
        var options = Guest("detached", "busybox echo QEMU-TEST-UP\nbusybox sleep 2\nbusybox echo QEMU-TEST-BYE\nbusybox poweroff -f");
        int pid;
        using (var machine = QemuMachine.StartDetached(options))
        {
            pid = machine.Pid;
            Assert.NotEqual(Environment.ProcessId, pid);
            Assert.Equal(pid.ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(Path.Combine(dir, "detached", "qemu.pid")).Trim());
            await machine.WaitForAsync("QEMU-TEST-UP", Boot);
            Assert.True(machine.Running);
            Assert.Throws<InvalidOperationException>(() => machine.ExitCode);   // not our child
        }
        // The follower is gone; QEMU is not: a second follower on the same console sees the rest.
        using var again = new SerialConsole(options.ConsoleLog, System.Diagnostics.Stopwatch.StartNew());
        var deadline = DateTime.UtcNow + Boot;
        while (again.Find(l => l.Contains("QEMU-TEST-BYE", StringComparison.Ordinal)) is null && DateTime.UtcNow < deadline)
            await Task.Delay(200);
        Assert.NotNull(again.Find(l => l.Contains("QEMU-TEST-BYE", StringComparison.Ordinal)));
        while (File.Exists($"/proc/{pid}/cmdline") && DateTime.UtcNow < deadline)
            await Task.Delay(200);
        Assert.False(File.Exists($"/proc/{pid}/cmdline"), "the detached QEMU did not exit after the guest powered off");
    }
}
