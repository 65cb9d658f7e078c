namespace Tabula.Linux;

/// <summary>mount(2) flags (include/uapi/linux/mount.h).</summary>
[Flags]
public enum MountFlags : ulong
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>MS_RDONLY.</summary>
    ReadOnly = 1,
    /// <summary>MS_NOSUID.</summary>
    NoSetUid = 2,
    /// <summary>MS_NODEV.</summary>
    NoDevices = 4,
    /// <summary>MS_NOEXEC.</summary>
    NoExecute = 8,
    /// <summary>MS_REMOUNT.</summary>
    Remount = 32,
    /// <summary>MS_BIND.</summary>
    Bind = 4096,
    /// <summary>MS_MOVE.</summary>
    Move = 8192,
    /// <summary>MS_REC.</summary>
    Recursive = 16384,
    /// <summary>MS_PRIVATE.</summary>
    Private = 1 << 18,
    /// <summary>MS_RELATIME.</summary>
    RelativeAccessTime = 1 << 21,
}

/// <summary>umount2(2) flags.</summary>
[Flags]
public enum UnmountFlags
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>MNT_FORCE.</summary>
    Force = 1,
    /// <summary>MNT_DETACH: lazy unmount.</summary>
    Detach = 2,
}
