namespace Tabula.Testing;

/// <summary>
/// The Debian kernel installed for guests (package linux-image-amd64): /boot/vmlinuz-RELEASE with
/// /lib/modules/RELEASE/modules.dep. The newest release that has both is used.
/// </summary>
public sealed record GuestKernel(string Release, string KernelPath, string ModulesDirectory)
{
    /// <summary>Finds the kernel, or null when none is installed.</summary>
    public static GuestKernel? Find()
    {
        if (!Directory.Exists("/boot"))
            return null;
        return Directory.GetFiles("/boot", "vmlinuz-*")
            .Select(path => Path.GetFileName(path)["vmlinuz-".Length..])
            .Where(release => File.Exists($"/lib/modules/{release}/modules.dep"))
            .OrderDescending(StringComparer.Ordinal)
            .Select(release => new GuestKernel(release, $"/boot/vmlinuz-{release}", $"/lib/modules/{release}"))
            .FirstOrDefault();
    }

    /// <summary>Finds the kernel or throws with the install hint.</summary>
    public static GuestKernel Require() =>
        Find() ?? throw new InvalidOperationException("no guest kernel: install linux-image-amd64 (scripts/setup)");
}

/// <summary>A fact that needs the guest kernel (and optionally tools): skipped without, failing under CI.</summary>
public sealed class GuestKernelFactAttribute : FactAttribute
{
    /// <summary>Needs a guest kernel, root when <paramref name="needsRoot"/>, and <paramref name="tools"/>.</summary>
    public GuestKernelFactAttribute(bool needsRoot = false, params string[] tools)
    {
        if (Prerequisites.IsCi)
            return;
        if (GuestKernel.Find() is null)
            Skip = "no guest kernel: install linux-image-amd64 (scripts/setup)";
        else if (Prerequisites.Missing(needsRoot, tools) is { } missing)
            Skip = missing;
    }
}
