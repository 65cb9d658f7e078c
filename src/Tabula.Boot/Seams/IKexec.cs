using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Tabula.Boot.Kexec;
using Tabula.Linux;
using Tabula.Linux.Efi;

namespace Tabula.Boot.Seams;

/// <summary>
/// The hand-over, split like the kernel splits it: <see cref="Load"/> stages kernel, initramfs and command line
/// (kexec_load with stboot's own layout, or kexec_file_load) and says how, <see cref="Execute"/> jumps
/// (reboot(LINUX_REBOOT_CMD_KEXEC)) and returns only in a dry run. Both files are read-only descriptors of RAM-backed
/// regular files with no writer left open.
/// </summary>
internal interface IKexec
{
    string Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine, KexecChoice choice);

    void Execute();
}

/// <summary>
/// The real calls, as <see cref="KexecChoice"/> says: on x86-64 the kernel is laid out by <see cref="X86BootLoader"/> and
/// loaded with kexec_load, on an EFI-booted machine with the EFI state the next kernel needs (<see cref="EfiBootState"/>);
/// anything that stops that (a kernel, memory map or EFI state it cannot use, a refusal) falls back to kexec_file_load
/// unless the choice says not to, and the returned method says why.
/// </summary>
internal sealed class LinuxKexec : IKexec
{
    public string Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine, KexecChoice choice)
    {
        string? skipped = !choice.TryLoad ? choice.Why
            : RuntimeInformation.ProcessArchitecture != Architecture.X64 ? "not x86-64"
            : null;
        if (skipped is null)
        {
            try
            {
                EfiBootState? efi = Directory.Exists("/sys/firmware/efi") ? EfiBootState.Read() : null;
                var plan = X86BootLoader.Plan(ReadAll(kernel), ReadAll(initramfs), commandLine, FirmwareMemoryMap.Read(), efi);
                try
                {
                    Linux.Kexec.LoadSegments(plan.Entry, plan.Segments);
                }
                finally
                {
                    plan.ClearSecrets();   // the kernel has its own copy of the RNG seed, or none
                }
                return $"kexec_load {plan.Summary}";
            }
            catch (Exception e) when (choice.FallBack && e is KexecPlanException or KernelDataException or LinuxException or IOException)
            {
                skipped = e.Message;
            }
            catch (Exception e) when (e is KexecPlanException or KernelDataException)
            {
                throw new IOException($"kexec_load (--kexec=load): {e.Message}", e);
            }
        }
        Linux.Kexec.LoadFile(kernel, initramfs, commandLine);
        return $"kexec_file_load (kexec_load: {skipped})";
    }

    internal static byte[] ReadAll(SafeFileHandle file)
    {
        byte[] bytes = new byte[RandomAccess.GetLength(file)];
        int total = 0;
        while (total < bytes.Length)
        {
            int n = RandomAccess.Read(file, bytes.AsSpan(total), total);
            if (n == 0)
                break;
            total += n;
        }
        return total == bytes.Length ? bytes : bytes[..total];
    }

    public void Execute() => Linux.Reboot.Kexec();
}

/// <summary>
/// Stops just before the system calls (u-root's WithDryRun) and records what would have been loaded: the exact
/// bytes of kernel and initramfs and the command line, so host tests can check the whole flow.
/// </summary>
internal sealed class DryRunKexec : IKexec
{
    public byte[]? Kernel { get; private set; }
    public byte[]? Initramfs { get; private set; }
    public string? CommandLine { get; private set; }
    public int Loads { get; private set; }
    public bool Executed { get; private set; }

    /// <summary>The last choice passed.</summary>
    public KexecChoice? Choice { get; private set; }

    public string Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine, KexecChoice choice)
    {
        Choice = choice;
        Kernel = LinuxKexec.ReadAll(kernel);
        Initramfs = LinuxKexec.ReadAll(initramfs);
        CommandLine = commandLine;
        Loads++;
        return "dry-run";
    }

    public void Execute()
    {
        if (Kernel is null)
            throw new InvalidOperationException("reboot(KEXEC) without a loaded kernel");
        Executed = true;
    }
}
