namespace Tabula.Qemu.Tests;

public sealed class QemuArgumentsTests
{
    static readonly QemuOptions Relay = new("relay-1", "/boot/vmlinuz-6.1", "/lab/relay-1/stboot.cpio.gz", "console=ttyS0 panic=-1 quiet",
        "/lab/relay-1/console.log") { Namespace = "tabula-lab-1", Nic = new QemuNic("tap1", "52:54:00:7a:b1:01") };

    [Fact]
    public void A_lab_relay_runs_under_tcg_in_its_namespace_on_its_tap_with_the_console_in_a_file()
    {
        var command = QemuArguments.Command(Relay, "/usr/bin/qemu-system-x86_64", "/usr/sbin/ip", "/lab/relay-1/qemu.pid");
        Assert.Equal([
            "/usr/sbin/ip", "netns", "exec", "tabula-lab-1", "/usr/bin/qemu-system-x86_64",
            "-name", "relay-1", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-display", "none", "-no-reboot", "-nodefaults",
            "-serial", "file:/lab/relay-1/console.log", "-monitor", "none",
            "-kernel", "/boot/vmlinuz-6.1", "-initrd", "/lab/relay-1/stboot.cpio.gz", "-append", "console=ttyS0 panic=-1 quiet",
            "-netdev", "tap,id=n0,ifname=tap1,script=no,downscript=no", "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:7a:b1:01",
            "-daemonize", "-pidfile", "/lab/relay-1/qemu.pid"], command);
    }

    [Fact]
    public void A_machine_that_survives_its_guest_reboot_has_no_no_reboot_and_nothing_else_changes()
    {
        var exits = QemuArguments.For(Relay);
        var survives = QemuArguments.For(Relay with { ExitOnReboot = false });
        Assert.Contains("-no-reboot", exits);
        Assert.DoesNotContain("-no-reboot", survives);
        Assert.Equal(exits.Where(a => a != "-no-reboot"), survives);
    }

    [Fact]
    public void Without_a_nic_there_is_none_and_without_a_namespace_qemu_is_the_program()
    {
        var command = QemuArguments.Command(Relay with { Namespace = null, Nic = null, Disk = "/tmp/disk.raw" }, "qemu", ip: null);
        Assert.Equal("qemu", command[0]);
        Assert.DoesNotContain("-netdev", command);
        Assert.DoesNotContain("-daemonize", command);
        Assert.Equal(["-nic", "none", "-drive", "file=/tmp/disk.raw,format=raw,if=virtio,cache=writethrough"], command.TakeLast(4));
    }

    [Fact]
    public void The_wireguard_guest_gets_q35_two_cpus_and_the_host_root_read_only_over_9p()
    {
        var args = QemuArguments.For(Relay with
        {
            Namespace = null, Nic = null, MachineType = "q35", Cpus = 2, MemoryMiB = 2048, HostShare = new QemuHostShare("/", "hostroot"),
        });
        Assert.Equal(["-name", "relay-1", "-machine", "q35", "-accel", "tcg", "-cpu", "max", "-m", "2048", "-smp", "2"], args.Take(12));
        Assert.Equal(["-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap"], args.TakeLast(2));
        Assert.DoesNotContain("-accel", QemuArguments.For(Relay).Skip(3));   // one accelerator, and never kvm
        Assert.DoesNotContain(args, a => a.Contains("kvm", StringComparison.Ordinal));
    }

    [Fact]
    public void Nonsense_sizes_are_refused_and_a_namespace_needs_ip()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => QemuArguments.For(Relay with { MemoryMiB = 0 }));
        Assert.Throws<ArgumentOutOfRangeException>(() => QemuArguments.For(Relay with { Cpus = 0 }));
        Assert.Throws<ArgumentNullException>(() => QemuArguments.Command(Relay, "qemu", ip: null));
    }

    [Fact]
    public void A_tpm_is_an_swtpm_emulator_on_its_control_socket_as_tis_or_crb()
    {
        var tis = QemuArguments.For(Relay with { Tpm = new QemuTpm("/lab/relay-1/swtpm.sock") });
        Assert.Equal(["-chardev", "socket,id=chrtpm,path=/lab/relay-1/swtpm.sock", "-tpmdev", "emulator,id=tpm0,chardev=chrtpm",
            "-device", "tpm-tis,tpmdev=tpm0"], tis.TakeLast(6));
        var crb = QemuArguments.For(Relay with { MachineType = "q35", Tpm = new QemuTpm("/s", TpmInterface.Crb) });
        Assert.Equal("tpm-crb,tpmdev=tpm0", crb[^1]);
        Assert.DoesNotContain("-tpmdev", QemuArguments.For(Relay));
    }

    [Fact]
    public void Show_quotes_what_a_shell_would_split()
    {
        Assert.Equal("qemu -append 'console=ttyS0 quiet' -name 'it'\\''s'", QemuArguments.Show(["qemu", "-append", "console=ttyS0 quiet", "-name", "it's"]));
    }

    [Fact]
    public void Uefi_machines_get_ovmf_as_two_flash_devices_and_boot_their_media_without_kernel_or_nic_rom()
    {
        var firmware = new QemuFirmware(QemuFirmware.DebianCode, "/lab/relay-1/VARS.fd");
        var esp = QemuArguments.For(QemuOptions.Uefi("relay-1", firmware, new QemuBootMedia("/lab/relay-1/esp", QemuMediaKind.EspDirectory), "/lab/c.log")
            with { Nic = new QemuNic("tap1", "52:54:00:7a:b1:01") });
        Assert.Equal(["-name", "relay-1", "-machine", "q35"], esp.Take(4));
        Assert.DoesNotContain("-kernel", esp);
        Assert.Contains("if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd", esp);
        Assert.Contains("if=pflash,format=raw,unit=1,file=/lab/relay-1/VARS.fd", esp);
        Assert.Contains("if=none,id=boot,format=raw,readonly=on,file=fat:/lab/relay-1/esp", esp);
        Assert.Contains("virtio-blk-pci,drive=boot,bootindex=0", esp);
        Assert.Contains("virtio-net-pci,netdev=n0,mac=52:54:00:7a:b1:01,romfile=", esp);

        var iso = QemuArguments.For(QemuOptions.Uefi("cd", firmware with { Code = QemuFirmware.DebianSecureBootCode, SecureBoot = true },
            new QemuBootMedia("/x/stboot.iso", QemuMediaKind.Cdrom), "/x/c.log"));
        Assert.Equal(["-name", "cd", "-machine", "q35,smm=on"], iso.Take(4));
        Assert.Contains("driver=cfi.pflash01,property=secure,value=on", iso);
        Assert.Contains("if=none,id=boot,media=cdrom,format=raw,readonly=on,file=/x/stboot.iso", iso);
        Assert.Contains("ide-cd,drive=boot,bus=ide.0,bootindex=0", iso);

        Assert.Throws<ArgumentException>(() => QemuArguments.For(Relay with { BootMedia = new QemuBootMedia("/x.iso", QemuMediaKind.Cdrom), Firmware = firmware }));
        Assert.Throws<ArgumentException>(() => QemuArguments.For(Relay with { Kernel = null, BootMedia = new QemuBootMedia("/x.iso", QemuMediaKind.Cdrom) }));
        Assert.Throws<ArgumentException>(() => QemuArguments.For(Relay with { Firmware = firmware with { SecureBoot = true } }));
    }
}
