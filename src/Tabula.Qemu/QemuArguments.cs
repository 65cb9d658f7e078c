using System.Globalization;

namespace Tabula.Qemu;

/// <summary>The QEMU command line for <see cref="QemuOptions"/> (pure, so it is tested without starting QEMU).</summary>
public static class QemuArguments
{
    /// <summary>The program and arguments: <c>ip netns exec NS qemu …</c> inside a namespace, else <c>qemu …</c>.
    /// <paramref name="pidFile"/> makes QEMU daemonize and write its pid there.</summary>
    public static IReadOnlyList<string> Command(QemuOptions options, string qemu, string? ip, string? pidFile = null)
    {
        var command = new List<string>();
        if (options.Namespace is { } ns)
            command.AddRange([ip ?? throw new ArgumentNullException(nameof(ip), "a namespace needs ip"), "netns", "exec", ns]);
        command.Add(qemu);
        command.AddRange(For(options, pidFile));
        return command;
    }

    /// <summary>QEMU's arguments.</summary>
    public static IReadOnlyList<string> For(QemuOptions options, string? pidFile = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MemoryMiB, 64);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Cpus, 1);
        if (options.Kernel is null == options.BootMedia is null)
            throw new ArgumentException("a machine boots either a kernel (-kernel) or boot media, not both or neither", nameof(options));
        if (options.BootMedia is not null && options.Firmware is null)
            throw new ArgumentException("boot media needs UEFI firmware", nameof(options));
        var args = new List<string> { "-name", options.Name };
        if (options.MachineType is { } type)
            args.AddRange(["-machine", options.Firmware is { SecureBoot: true } ? type + ",smm=on" : type]);
        else if (options.Firmware is { SecureBoot: true })
            throw new ArgumentException("Secure Boot firmware needs a machine type with SMM (q35)", nameof(options));
        args.AddRange(["-accel", "tcg", "-cpu", "max", "-m", options.MemoryMiB.ToString(CultureInfo.InvariantCulture)]);
        if (options.Cpus > 1)
            args.AddRange(["-smp", options.Cpus.ToString(CultureInfo.InvariantCulture)]);
        args.AddRange(["-display", "none"]);
        if (options.ExitOnReboot)
            args.Add("-no-reboot");
        args.AddRange(["-nodefaults", "-serial", "file:" + options.ConsoleLog, "-monitor", "none"]);
        if (options.Firmware is { } firmware)
        {
            if (firmware.SecureBoot)
                args.AddRange(["-global", "driver=cfi.pflash01,property=secure,value=on"]);
            args.AddRange(["-drive", $"if=pflash,format=raw,unit=0,readonly=on,file={firmware.Code}",
                "-drive", $"if=pflash,format=raw,unit=1,file={firmware.Variables}"]);
        }
        if (options.Kernel is { } kernel)
            args.AddRange(["-kernel", kernel, "-initrd", options.Initramfs ?? throw new ArgumentException("-kernel needs an initramfs", nameof(options)),
                "-append", options.CommandLine ?? throw new ArgumentException("-kernel needs a command line", nameof(options))]);
        if (options.BootMedia is { } media)
            args.AddRange(media.Kind == QemuMediaKind.Cdrom
                ? ["-drive", $"if=none,id=boot,media=cdrom,format=raw,readonly=on,file={media.Path}", "-device", "ide-cd,drive=boot,bus=ide.0,bootindex=0"]
                : ["-drive", $"if=none,id=boot,format=raw,readonly=on,file=fat:{media.Path}", "-device", "virtio-blk-pci,drive=boot,bootindex=0"]);
        // Under firmware, no option ROM on the NIC: OVMF would otherwise load iPXE and may try the network first.
        if (options.Nic is { } nic)
            args.AddRange(["-netdev", $"tap,id=n0,ifname={nic.Tap},script=no,downscript=no",
                "-device", $"virtio-net-pci,netdev=n0,mac={nic.Mac}{(options.Firmware is null ? "" : ",romfile=")}"]);
        else
            args.AddRange(["-nic", "none"]);
        if (options.Disk is { } disk)
            args.AddRange(["-drive", $"file={disk},format=raw,if=virtio,cache=writethrough"]);
        if (options.HostShare is { } share)
            args.AddRange(["-virtfs", $"local,path={share.Path},mount_tag={share.Tag},security_model=none,{(share.ReadOnly ? "readonly=on," : "")}multidevs=remap"]);
        if (options.Tpm is { } tpm)
            args.AddRange(["-chardev", $"socket,id=chrtpm,path={tpm.ControlSocket}", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
                "-device", (tpm.Interface == TpmInterface.Crb ? "tpm-crb" : "tpm-tis") + ",tpmdev=tpm0"]);
        if (pidFile is not null)
            args.AddRange(["-daemonize", "-pidfile", pidFile]);
        return args;
    }

    /// <summary>A command as a shell would show it, for logs and messages.</summary>
    public static string Show(IEnumerable<string> command) =>
        string.Join(' ', command.Select(a => a.Length > 0 && a.All(c => char.IsAsciiLetterOrDigit(c) || "-_./=:,+@".Contains(c)) ? a : $"'{a.Replace("'", "'\\''")}'"));
}
