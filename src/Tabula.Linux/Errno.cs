namespace Tabula.Linux;

/// <summary>Linux errno values (asm-generic/errno-base.h and errno.h; x86_64 and arm64 share them).</summary>
/// <remarks>Values not listed still round-trip: cast the raw number.</remarks>
#pragma warning disable CS1591 // The names are the kernel's; a comment per member would restate them.
public enum Errno
{
    None = 0,
    EPERM = 1, ENOENT = 2, ESRCH = 3, EINTR = 4, EIO = 5, ENXIO = 6, E2BIG = 7, ENOEXEC = 8, EBADF = 9,
    ECHILD = 10, EAGAIN = 11, ENOMEM = 12, EACCES = 13, EFAULT = 14, EBUSY = 16, EEXIST = 17, EXDEV = 18,
    ENODEV = 19, ENOTDIR = 20, EISDIR = 21, EINVAL = 22, ENFILE = 23, EMFILE = 24, ETXTBSY = 26, EFBIG = 27,
    ENOSPC = 28, EROFS = 30, EPIPE = 32, ERANGE = 34, ENOSYS = 38, ENOMSG = 42, ENODATA = 61, EPROTO = 71, EBADMSG = 74,
    EMSGSIZE = 90, EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, EADDRNOTAVAIL = 99, ENETDOWN = 100,
    ENETUNREACH = 101, ECONNRESET = 104, ENOBUFS = 105, ENOTCONN = 107, ETIMEDOUT = 110, ECONNREFUSED = 111,
    EHOSTUNREACH = 113, EALREADY = 114, EINPROGRESS = 115, ENOKEY = 126, EKEYEXPIRED = 127,
    EKEYREVOKED = 128, EKEYREJECTED = 129,
}
#pragma warning restore CS1591
