namespace Tabula.Lab;

/// <summary>The guest kernel: /boot/vmlinuz-RELEASE with /lib/modules/RELEASE/modules.dep (Debian's linux-image-amd64).</summary>
/// <param name="Release">uname -r of the kernel.</param>
/// <param name="KernelPath">The bzImage.</param>
public sealed record LabKernel(string Release, string KernelPath)
{
    /// <summary>The newest installed release that has both the image and its modules, or null.</summary>
    public static LabKernel? Find() => !Directory.Exists("/boot") ? null
        : Directory.GetFiles("/boot", "vmlinuz-*")
            .Select(path => Path.GetFileName(path)["vmlinuz-".Length..])
            .Where(release => File.Exists($"/lib/modules/{release}/modules.dep"))
            .OrderDescending(StringComparer.Ordinal)
            .Select(release => new LabKernel(release, $"/boot/vmlinuz-{release}"))
            .FirstOrDefault();
}

/// <summary>What `lab up` needs on the host, each with the Debian package that provides it (scripts/setup installs them).</summary>
public static class LabPrerequisites
{
    /// <summary>Tools on PATH and the package each comes from.</summary>
    public static readonly IReadOnlyList<(string Tool, string Package)> Tools =
    [
        ("qemu-system-x86_64", "qemu-system-x86"), ("wireguard-go", "wireguard-go"), ("wg", "wireguard-tools"),
        ("ip", "iproute2"), ("ping", "iputils-ping"), ("setsid", "util-linux"),
    ];

    /// <summary>What the relays' TPMs need (`lab up` without <c>--tpm none</c>).</summary>
    public static readonly IReadOnlyList<(string Tool, string Package)> TpmTools =
        [("swtpm", "swtpm"), ("swtpm_setup", "swtpm-tools"), ("swtpm_localca", "swtpm-tools")];

    static IEnumerable<(string Tool, string Package)> Needed(bool tpm) => tpm ? Tools.Concat(TpmTools) : Tools;

    /// <summary>The Debian packages that would provide what is missing (the guest kernel included; with
    /// <paramref name="firmware"/> uefi OVMF, the systemd EFI stub and, for Secure Boot, sbsigntool).</summary>
    public static IReadOnlyList<string> MissingPackages(bool tpm = false, string firmware = LabFirmware.Bios, bool secureBoot = false)
    {
        var packages = Needed(tpm).Where(t => HostProcess.Find(t.Tool) is null).Select(t => t.Package).Distinct().ToList();
        if (LabKernel.Find() is null)
            packages.Add("linux-image-amd64");
        packages.AddRange(MissingFirmware(firmware, secureBoot).Select(f => f.Package));
        return packages.Distinct().ToList();
    }

    /// <summary>What <see cref="LabFirmware.Requirements"/> names that is not there (a file that does not exist, a tool not on PATH).</summary>
    static IEnumerable<(string Need, string Package)> MissingFirmware(string firmware, bool secureBoot) =>
        LabFirmware.Requirements(firmware, secureBoot).Where(r => r.Need.StartsWith('/') ? !File.Exists(r.Need) : HostProcess.Find(r.Need) is null);

    /// <summary>
    /// Installs <see cref="MissingPackages"/> with apt-get when running as root on a Debian-like host (no-op when nothing
    /// is missing). Returns false when it could not try (not root, no apt-get); apt-get's own failure throws with its output.
    /// </summary>
    public static bool InstallMissing(Action<string> progress, bool tpm = false, string firmware = LabFirmware.Bios, bool secureBoot = false)
    {
        var packages = MissingPackages(tpm, firmware, secureBoot);
        if (packages.Count == 0)
            return true;
        if (Environment.UserName != "root" || HostProcess.Find("apt-get") is null)
            return false;
        progress($"      installing {string.Join(' ', packages)} (apt-get install; a few minutes on a fresh machine)");
        var environment = new Dictionary<string, string> { ["DEBIAN_FRONTEND"] = "noninteractive" };
        var (code, stdout, stderr) = HostProcess.TryRun(["apt-get", "install", "-y", "-q", "--no-install-recommends", .. packages], environment: environment,
            timeout: TimeSpan.FromMinutes(20));
        if (code != 0)
            throw new LabException($"apt-get install {string.Join(' ', packages)} failed ({code}): " +
                                   string.Join('\n', (stderr + stdout).Split('\n').TakeLast(10)));
        return true;
    }

    /// <summary>One entry per missing thing: "root", or "TOOL (package PKG)", or the kernel.</summary>
    public static IReadOnlyList<string> Missing(bool tpm = false, string firmware = LabFirmware.Bios, bool secureBoot = false)
    {
        var missing = new List<string>();
        if (Environment.UserName != "root")
            missing.Add("root (network namespaces, taps and QEMU's tap networking need it: run with sudo)");
        foreach (var (tool, package) in Needed(tpm))
            if (HostProcess.Find(tool) is null)
                missing.Add($"{tool} (package {package})");
        if (LabKernel.Find() is null)
            missing.Add("a guest kernel: /boot/vmlinuz-RELEASE with /lib/modules/RELEASE (package linux-image-amd64)");
        foreach (var (need, package) in MissingFirmware(firmware, secureBoot))
            missing.Add($"{need} (package {package})");
        return missing;
    }
}
