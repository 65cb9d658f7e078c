using System.Diagnostics.CodeAnalysis;
using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>reboot(2): the ways PID 1 leaves. Each needs CAP_SYS_BOOT and returns only by throwing.</summary>
public static class Reboot
{
    const int CmdKexec = 0x45584543;
    const int CmdRestart = 0x01234567;
    const int CmdPowerOff = 0x4321FEDC;
    const int CmdHalt = unchecked((int)0xCDEF0123);

    /// <summary>LINUX_REBOOT_CMD_KEXEC: jumps into the kernel staged by <see cref="Kexec.LoadFile"/>. No sync, no unmount.</summary>
    [DoesNotReturn]
    public static void Kexec() => Call(CmdKexec, "LINUX_REBOOT_CMD_KEXEC");

    /// <summary>LINUX_REBOOT_CMD_RESTART.</summary>
    [DoesNotReturn]
    public static void Restart() => Call(CmdRestart, "LINUX_REBOOT_CMD_RESTART");

    /// <summary>LINUX_REBOOT_CMD_POWER_OFF (QEMU exits).</summary>
    [DoesNotReturn]
    public static void PowerOff() => Call(CmdPowerOff, "LINUX_REBOOT_CMD_POWER_OFF");

    /// <summary>LINUX_REBOOT_CMD_HALT.</summary>
    [DoesNotReturn]
    public static void Halt() => Call(CmdHalt, "LINUX_REBOOT_CMD_HALT");

    /// <summary>sync(2): flushes file systems; call before <see cref="PowerOff"/> when a disk is mounted.</summary>
    public static void Sync() => Libc.Sync();

    [DoesNotReturn]
    static void Call(int command, string name)
    {
        if (Libc.Reboot(command) != 0)
            LinuxException.ThrowLastError($"reboot(cmd={name})");
        throw new InvalidOperationException($"reboot(cmd={name}) returned without rebooting");
    }
}
