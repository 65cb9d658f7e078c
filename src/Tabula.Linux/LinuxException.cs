using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Tabula.Linux;

/// <summary>
/// A system call failed. <see cref="Call"/> spells the call with its arguments as u-root does,
/// e.g. <c>kexec_file_load(kernel=fd 5, initrd=fd 6, flags=0x0)</c>; <see cref="Errno"/> is what it returned.
/// </summary>
/// <remarks>Arguments in <see cref="Call"/> are descriptors, paths, flags and sizes; never key material.</remarks>
public sealed class LinuxException : Exception
{
    /// <summary>Creates the exception for a call that failed with <paramref name="errno"/>.</summary>
    public LinuxException(string call, int errno)
        : this(call, errno, kernelMessage: null)
    {
    }

    /// <summary>
    /// Creates the exception for a netlink request the kernel refused with <paramref name="errno"/> and, when it sent
    /// an extended ack, <paramref name="kernelMessage"/> (a fixed string from the kernel, e.g. "Unknown device type").
    /// </summary>
    public LinuxException(string call, int errno, string? kernelMessage)
        : base($"{call} = {Describe((Errno)errno)}{(kernelMessage is null ? "" : $": {kernelMessage}")}")
    {
        Call = call;
        Errno = (Errno)errno;
        KernelMessage = kernelMessage;
    }

    /// <summary>The call and its arguments, without the result.</summary>
    public string Call { get; }

    /// <summary>The errno the call failed with.</summary>
    public Errno Errno { get; }

    /// <summary>The kernel's extended-ack text (NLMSGERR_ATTR_MSG) for a refused netlink request, when it sent one.</summary>
    public string? KernelMessage { get; }

    /// <summary>
    /// True when trying the same call again later can succeed without changing anything: interrupted,
    /// busy, out of buffers or memory for now, or a network that is not up yet.
    /// </summary>
    public bool IsTransient => Errno is Errno.EINTR or Errno.EAGAIN or Errno.EBUSY or Errno.ENOMEM
        or Errno.ENOBUFS or Errno.ETIMEDOUT or Errno.ENETDOWN or Errno.ENETUNREACH or Errno.EHOSTUNREACH
        or Errno.ECONNREFUSED or Errno.ECONNRESET or Errno.EADDRNOTAVAIL;

    /// <summary>Throws for the last P/Invoke error of the calling thread.</summary>
    [DoesNotReturn]
    internal static void ThrowLastError(string call) => throw new LinuxException(call, Marshal.GetLastPInvokeError());

    /// <summary>Creates the exception for the last P/Invoke error of the calling thread.</summary>
    internal static LinuxException FromLastError(string call) => new(call, Marshal.GetLastPInvokeError());

    static string Describe(Errno errno) =>
        Enum.IsDefined(errno) ? $"{errno} ({Marshal.GetPInvokeErrorMessage((int)errno)})" : $"errno {(int)errno}";
}
