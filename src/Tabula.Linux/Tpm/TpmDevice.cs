using Tabula.Linux.Interop;

namespace Tabula.Linux.Tpm;

/// <summary>
/// The kernel's TPM character device: one whole command per write(2), one whole response per read(2), one
/// command at a time. Bytes only; the commands and their formats are Tabula.Tpm's, and Tabula.Machine joins the
/// two (<c>TpmDeviceTransport</c>).
/// </summary>
/// <remarks>
/// /dev/tpmrm0 is the kernel's resource manager (Linux 4.12+): it swaps transient objects and sessions out between
/// commands and flushes what a closed file left, so several programs can share the TPM. /dev/tpm0 is the raw device:
/// only one opener at a time (EBUSY otherwise), and objects outlive a crashed user until TPM2_FlushContext.
/// </remarks>
public sealed class TpmDevice : IDisposable
{
    /// <summary>Where the kernel puts the TPM: the resource manager first, then the raw device.</summary>
    public static IReadOnlyList<string> DefaultPaths { get; } = ["/dev/tpmrm0", "/dev/tpm0"];

    const int ORdWr = 0x2, OCloExec = 0x80000;

    readonly SafeFdHandle fd;

    TpmDevice(SafeFdHandle fd, string path)
    {
        this.fd = fd;
        Path = path;
    }

    /// <summary>The device file that was opened.</summary>
    public string Path { get; }

    /// <summary>
    /// Opens the first of <paramref name="paths"/> (default <see cref="DefaultPaths"/>) that exists, or returns
    /// null when none does (a machine without a TPM). Any other failure (EBUSY on /dev/tpm0, EACCES) throws
    /// <see cref="LinuxException"/>: a TPM that is there but cannot be used is not "no TPM".
    /// </summary>
    public static TpmDevice? TryOpen(IReadOnlyList<string>? paths = null)
    {
        foreach (string path in paths ?? DefaultPaths)
        {
            var fd = Libc.Open(path, ORdWr | OCloExec);
            if (!fd.IsInvalid)
                return new TpmDevice(fd, path);
            var error = LinuxException.FromLastError($"open({path}, O_RDWR|O_CLOEXEC)");
            fd.Dispose();
            if (error.Errno is not (Errno.ENOENT or Errno.ENODEV or Errno.ENXIO))
                throw error;
        }
        return null;
    }

    /// <summary>
    /// Writes <paramref name="command"/> in one write(2) and reads the response in one read(2) into
    /// <paramref name="response"/>; returns its length. The driver takes a command only whole and hands the whole
    /// response to the first read, so a short write is an error and <paramref name="response"/> must hold the
    /// largest response (4096 bytes).
    /// </summary>
    public unsafe int Transmit(ReadOnlySpan<byte> command, Span<byte> response)
    {
        nint n;
        fixed (byte* c = command)
        {
            do n = Libc.Write(fd, c, (nuint)command.Length);
            while (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (n < 0)
                LinuxException.ThrowLastError($"write({Path}, length={command.Length})");
            if (n != command.Length)
                throw new LinuxException($"write({Path}, length={command.Length}) wrote {n}", (int)Errno.EIO);
        }
        fixed (byte* r = response)
        {
            do n = Libc.Read(fd, r, (nuint)response.Length);
            while (n < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == (int)Errno.EINTR);
            if (n < 0)
                LinuxException.ThrowLastError($"read({Path}, length={response.Length})");
        }
        return (int)n;
    }

    /// <summary>Closes the device; with /dev/tpmrm0 the kernel flushes what this file left loaded.</summary>
    public void Dispose() => fd.Dispose();
}
