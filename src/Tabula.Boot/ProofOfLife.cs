using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Tabula.Linux;
using Tabula.Linux.Netlink;

namespace Tabula.Boot;

/// <summary>
/// Proves the low-level boot path inside a VM. Arguments come from the kernel command line after "--":
/// <list type="bullet">
/// <item><c>fetch ADDRESS/PREFIX GATEWAY|none URL</c>: load modules from /lib/modules/load-order, configure the
/// first NIC with rtnetlink, GET the URL, print <c>TABULA-FETCHED sha256=… body=…</c>, power off.</item>
/// <item><c>kexec KERNEL INITRAMFS CMDLINE-FILE</c>: copy the initramfs into a memfd, kexec_file_load, reboot(KEXEC).</item>
/// <item><c>marker FILE</c>: print <c>TABULA-MARKER</c> with the file's content, power off.</item>
/// <item><c>version</c>: print the version (usable outside a VM as a smoke test).</item>
/// </list>
/// As PID 1 it mounts /dev, /proc, /sys and /run first and never exits: failures are printed as
/// <c>tabula-boot: FAILED …</c>, then the machine powers off.
/// </summary>
internal static class ProofOfLife
{
    internal static int Run(string[] args)
    {
        bool pid1 = Environment.ProcessId == 1;
        try
        {
            if (args is ["version"])
            {
                Console.WriteLine($"tabula-boot {typeof(ProofOfLife).Assembly.GetName().Version} pid={Environment.ProcessId}");
                return 0;
            }
            if (!pid1)
            {
                Console.Error.WriteLine("tabula-boot: the proof-of-life modes run only as PID 1");
                return 2;
            }
            MountEssentials();
            BootConsole.Line("stage:start", $"kernel-uptime={ReadUptime()} args=[{string.Join(' ', args)}]");
            switch (args)
            {
                case ["fetch", var address, var gateway, var url]:
                    Fetch(address, gateway, url);
                    break;
                case ["kexec", var kernel, var initramfs, var commandLineFile]:
                    KexecInto(kernel, initramfs, commandLineFile);
                    break;
                case ["marker", var file]:
                    BootConsole.Line("TABULA-MARKER", File.ReadAllText(file).Trim() + $" kernel-uptime={ReadUptime()}");
                    break;
                default:
                    BootConsole.Line("FAILED", $"unknown arguments [{string.Join(' ', args)}]");
                    break;
            }
        }
        catch (Exception e)
        {
            BootConsole.Line("FAILED", e.ToString().ReplaceLineEndings(" | "));
        }
        if (pid1)
            PowerOff();
        return 1;
    }

    static void MountEssentials()
    {
        const UnixFileMode dirMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute
            | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
        // u-root's order: devtmpfs first (for /dev/kmsg), then proc, sys, a tmpfs for scratch.
        foreach (var (source, target, type, flags) in new (string, string, string, MountFlags)[]
        {
            ("devtmpfs", "/dev", "devtmpfs", MountFlags.NoSetUid),
            ("proc", "/proc", "proc", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("sysfs", "/sys", "sysfs", MountFlags.NoSetUid | MountFlags.NoDevices | MountFlags.NoExecute),
            ("tmpfs", "/run", "tmpfs", MountFlags.NoSetUid | MountFlags.NoDevices),
        })
        {
            try { FileSystem.MakeDirectory(target, dirMode); }
            catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
            MountPoint.Mount(source, target, type, flags);
        }
    }

    static void LoadModules()
    {
        const string list = "/lib/modules/load-order";
        if (!File.Exists(list))
            return;
        var clock = Stopwatch.StartNew();
        int loaded = 0;
        foreach (string path in File.ReadAllLines(list).Where(l => l.Length > 0))
        {
            using SafeFileHandle module = File.OpenHandle(path, FileMode.Open, FileAccess.Read);
            try
            {
                KernelModule.Load(module);
                loaded++;
            }
            catch (LinuxException e) when (e.Errno == Errno.EEXIST) { }
        }
        BootConsole.Line("stage:modules", $"loaded={loaded} took={clock.ElapsedMilliseconds}ms");
    }

    static void Fetch(string addressWithPrefix, string gateway, string url)
    {
        LoadModules();
        var clock = Stopwatch.StartNew();
        string[] parts = addressWithPrefix.Split('/');
        var address = IPAddress.Parse(parts[0]);
        int prefix = int.Parse(parts[1], CultureInfo.InvariantCulture);

        using var rtnl = RouteSocket.Open();
        Link nic = WaitFor(() => rtnl.GetLinks().FirstOrDefault(l => (l.Flags & LinkFlags.Loopback) == 0 && l.HardwareAddress is not null),
            TimeSpan.FromSeconds(10), "a network interface")!;
        foreach (Link loopback in rtnl.GetLinks().Where(l => (l.Flags & LinkFlags.Loopback) != 0))
            rtnl.SetLinkUp(loopback.Index);
        rtnl.SetLinkUp(nic.Index);
        rtnl.AddAddress(nic.Index, address, prefix);
        WaitFor(() => rtnl.GetLinks().FirstOrDefault(l => l.Index == nic.Index && l.HasCarrier), TimeSpan.FromSeconds(10), "carrier");
        if (gateway != "none")
            rtnl.AddDefaultRoute(IPAddress.Parse(gateway), nic.Index);
        BootConsole.Line("stage:network", $"nic={nic.Name} mac={nic.HardwareAddress} address={addressWithPrefix} took={clock.ElapsedMilliseconds}ms");

        clock.Restart();
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(10) };
        byte[] body = [];
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                body = http.GetByteArrayAsync(url).GetAwaiter().GetResult();
                break;
            }
            catch (HttpRequestException e) when (attempt < 8)
            {
                BootConsole.Line("stage:fetch-retry", $"attempt={attempt} {e.Message}");
                Thread.Sleep(500);
            }
        }
        string hash = Convert.ToHexStringLower(SHA256.HashData(body));
        string text = System.Text.Encoding.UTF8.GetString(body).Trim();
        BootConsole.Line("TABULA-FETCHED", $"bytes={body.Length} sha256={hash} body={text} took={clock.ElapsedMilliseconds}ms");
    }

    static void KexecInto(string kernelPath, string initramfsPath, string commandLineFile)
    {
        var clock = Stopwatch.StartNew();
        string commandLine = File.ReadAllText(commandLineFile).Trim();
        // Stage the initramfs as downloaded bytes would be: in a memfd, reopened read-only (kexec_file_load
        // refuses an inode with a writable descriptor open: ETXTBSY).
        SafeFileHandle initramfs;
        using (SafeFileHandle writable = MemoryFile.Create("initramfs"))
        {
            byte[] bytes = File.ReadAllBytes(initramfsPath);
            RandomAccess.Write(writable, bytes, 0);
            initramfs = MemoryFile.ReopenReadOnly(writable);
        }
        using (initramfs)
        using (SafeFileHandle kernel = File.OpenHandle(kernelPath, FileMode.Open, FileAccess.Read))
        {
            Kexec.LoadFile(kernel, initramfs, commandLine);
        }
        BootConsole.Line("stage:kexec", $"loaded took={clock.ElapsedMilliseconds}ms cmdline=\"{commandLine}\"");
        Reboot.Kexec();
    }

    static T WaitFor<T>(Func<T?> probe, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            if (probe() is { } found)
                return found;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"no {what} after {timeout.TotalSeconds:0}s");
            Thread.Sleep(50);
        }
    }

    static string ReadUptime()
    {
        try { return File.ReadAllText("/proc/uptime").Split(' ')[0] + "s"; }
        catch (IOException) { return "?"; }
    }

    static void PowerOff()
    {
        while (true)
        {
            try { Reboot.PowerOff(); }
            catch (Exception e) { BootConsole.Line("FAILED", $"power off: {e.Message}"); }
            Thread.Sleep(5000);
        }
    }
}
