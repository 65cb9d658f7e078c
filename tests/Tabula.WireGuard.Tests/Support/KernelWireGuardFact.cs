using Tabula.Testing;

namespace Tabula.WireGuard.Tests.Support;

/// <summary>The WireGuard-specific prerequisite; the general ones are tests/Tabula.Testing's <see cref="Prerequisites"/>.</summary>
public static class KernelWireGuard
{
    /// <summary>True when the kernel knows the "wireguard" link kind (module loaded, loadable or built in).</summary>
    public static bool IsAvailable =>
        Directory.Exists("/sys/module/wireguard") ||
        (File.Exists("/proc/modules") && TryRun("modprobe", "-q", "wireguard") && Directory.Exists("/sys/module/wireguard"));

    static bool TryRun(string file, params string[] arguments)
    {
        try { Prerequisites.Run(file, arguments); return true; }
        catch (Exception) { return false; }
    }
}

/// <summary>
/// Needs root and kernel WireGuard. The kernel of this project's machine kind is built without CONFIG_WIREGUARD
/// (no module can be loaded), so a missing module skips even under CI unless TABULA_REQUIRE_KERNEL_WIREGUARD=1 says
/// the run is on a kernel that has it (the QEMU guest); missing root still fails under CI.
/// </summary>
public sealed class KernelWireGuardFactAttribute : FactAttribute
{
    public KernelWireGuardFactAttribute(params string[] tools)
    {
        bool required = Environment.GetEnvironmentVariable("TABULA_REQUIRE_KERNEL_WIREGUARD") == "1";
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: true, tools) is { } missing)
            Skip = missing;
        else if (!required && Prerequisites.IsRoot && !KernelWireGuard.IsAvailable)
            Skip = "this kernel has no WireGuard (CONFIG_WIREGUARD unset, no module); set TABULA_REQUIRE_KERNEL_WIREGUARD=1 to fail instead";
    }
}
