using Microsoft.Win32.SafeHandles;

namespace Tabula.Boot.Seams;

/// <summary>
/// The hand-over, split like the kernel splits it: <see cref="Load"/> stages kernel, initramfs and command line
/// (kexec_file_load), <see cref="Execute"/> jumps (reboot(LINUX_REBOOT_CMD_KEXEC)) and returns only in a dry run.
/// Both files are read-only descriptors of RAM-backed regular files with no writer left open.
/// </summary>
internal interface IKexec
{
    void Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine);

    void Execute();
}

/// <summary>The real calls.</summary>
internal sealed class LinuxKexec : IKexec
{
    public void Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine) =>
        Linux.Kexec.LoadFile(kernel, initramfs, commandLine);

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

    public void Load(SafeFileHandle kernel, SafeFileHandle initramfs, string commandLine)
    {
        Kernel = ReadAll(kernel);
        Initramfs = ReadAll(initramfs);
        CommandLine = commandLine;
        Loads++;
    }

    public void Execute()
    {
        if (Kernel is null)
            throw new InvalidOperationException("reboot(KEXEC) without a loaded kernel");
        Executed = true;
    }

    static byte[] ReadAll(SafeFileHandle file)
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
        return bytes;
    }
}
