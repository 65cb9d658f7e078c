using Tabula.Linux.Interop;

namespace Tabula.Linux;

/// <summary>setrlimit(2) resources (include/uapi/asm-generic/resource.h) that Tabula sets.</summary>
public enum ResourceLimit
{
    /// <summary>RLIMIT_CORE: largest core dump file; 0 means none is written.</summary>
    Core = 4,
}

/// <summary>Per-process resource limits; children inherit them.</summary>
public static class ResourceLimits
{
    /// <summary>Sets the soft and hard limit of <paramref name="resource"/> for this process.</summary>
    public static void Set(ResourceLimit resource, ulong soft, ulong hard)
    {
        var limit = new Libc.RLimit { Current = soft, Maximum = hard };
        if (Libc.SetRLimit((int)resource, in limit) != 0)
            throw LinuxException.FromLastError($"setrlimit({resource}, {soft}, {hard})");
    }
}
