namespace Tabula.WireGuard;

/// <summary>The Linux errno values this library meets (asm-generic/errno-base.h, errno.h), and their names.</summary>
internal static class Errno
{
    public const int EPERM = 1, ENOENT = 2, EINTR = 4, EIO = 5, EBADF = 9, EAGAIN = 11, ENOMEM = 12, EACCES = 13,
        EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENOSPC = 28, EPIPE = 32, ERANGE = 34, EMSGSIZE = 90,
        EPROTONOSUPPORT = 93, EOPNOTSUPP = 95, EAFNOSUPPORT = 97, EADDRINUSE = 98, ENOBUFS = 105, ECONNRESET = 104,
        ETIMEDOUT = 110, ECONNREFUSED = 111, EPROTO = 71, EBADMSG = 74;

    /// <summary>"EINVAL" for 22; "errno 200" for values without a name here.</summary>
    public static string Name(int errno) => errno switch
    {
        EPERM => "EPERM", ENOENT => "ENOENT", EINTR => "EINTR", EIO => "EIO", EBADF => "EBADF", EAGAIN => "EAGAIN",
        ENOMEM => "ENOMEM", EACCES => "EACCES", EBUSY => "EBUSY", EEXIST => "EEXIST", ENODEV => "ENODEV",
        EINVAL => "EINVAL", ENOSPC => "ENOSPC", EPIPE => "EPIPE", ERANGE => "ERANGE", EMSGSIZE => "EMSGSIZE",
        EPROTONOSUPPORT => "EPROTONOSUPPORT", EOPNOTSUPP => "EOPNOTSUPP", EAFNOSUPPORT => "EAFNOSUPPORT",
        EADDRINUSE => "EADDRINUSE", ENOBUFS => "ENOBUFS", ECONNRESET => "ECONNRESET", ETIMEDOUT => "ETIMEDOUT",
        ECONNREFUSED => "ECONNREFUSED", EPROTO => "EPROTO", EBADMSG => "EBADMSG",
        _ => $"errno {errno}",
    };
}
