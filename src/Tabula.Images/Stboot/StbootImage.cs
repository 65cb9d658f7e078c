using Tabula.Packaging.Cpio;
using Tabula.Images.Initramfs;
using Tabula.Images.KernelModules;
using Tabula.Packaging;

namespace Tabula.Images.Stboot;

/// <summary>
/// Builds the stboot initramfs: the common base (<see cref="InitramfsBase"/>: /init = tabula-boot, device nodes, empty
/// /proc /sys /run /etc), the trust policy in /etc/trust_policy/, the host configuration as
/// /etc/host_configuration.json, the requested kernel modules with their dependencies and bus transports, modules.dep and modules.alias (PID 1 coldplugs them), and
/// embedded OS packages under /ospkg/. Inputs are validated with
/// Tabula.Packaging first, so an image that would refuse to boot is refused here. Deterministic: the cpio writer
/// sorts entries and fixes mtimes, owners and inode numbers, and gzip gets no name and mtime 0, so the same inputs
/// give the same bytes.
/// </summary>
public static class StbootImage
{
    /// <summary>The files of a trust policy folder that go into the image (others are ignored).</summary>
    public static readonly IReadOnlyList<string> TrustPolicyFiles =
    [
        TrustPolicyFolder.PolicyFile, TrustPolicyFolder.LegacyPolicyFile, TrustPolicyFolder.SigningRootFile,
        TrustPolicyFolder.TlsRootsFile, TrustPolicyFolder.SigsumPolicyFile, TrustPolicyFolder.TicketRootFile,
    ];

    /// <summary>The module that provides efivarfs, added whenever the kernel's tree has it.</summary>
    public const string EfiVariablesModule = "efivarfs";

    /// <summary>Builds the archive (uncompressed entries; write it with <see cref="CpioArchive.WriteGzipTo"/>).</summary>
    public static (CpioArchive Archive, StbootImageSummary Summary) Build(StbootImageInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        TrustPolicyFolder trust;
        try { trust = TrustPolicyFolder.Load(inputs.TrustPolicyDirectory); }
        catch (Exception e) when (e is PackageFormatException or IOException)
        {
            ImageException.Throw(ImageError.InputInvalid, $"trust policy {inputs.TrustPolicyDirectory}: {e.Message}", e);
            throw;
        }

        CpioArchive archive = InitramfsBase.Create(inputs.Init);

        foreach (string file in TrustPolicyFiles)
        {
            string path = Path.Combine(inputs.TrustPolicyDirectory, file);
            if (File.Exists(path))
                archive.AddFileFrom($"{InitramfsLayout.TrustPolicyDirectory}/{file}", path);
        }

        if (inputs.HostConfigFile is { } hostConfig)
        {
            try
            {
                byte[] json = TrustPolicyFolder.ReadLimited(hostConfig, Packaging.Limits.MaxConfigJsonBytes);
                HostConfig parsed = HostConfig.Parse(json);
                if (trust.Policy.FetchMethod == FetchMethod.Network)
                    foreach (string pointer in parsed.OsPackagePointers)
                        if (!Uri.TryCreate(pointer, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https"))
                            ImageException.Throw(ImageError.InputInvalid, $"host configuration {hostConfig}: ospkg_pointer entry is not an http(s) URL (fetch method is network)");
                archive.AddFile(InitramfsLayout.HostConfig, json, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            }
            catch (Exception e) when (e is PackageFormatException or IOException)
            {
                ImageException.Throw(ImageError.InputInvalid, $"host configuration {hostConfig}: {e.Message}", e);
            }
        }

        foreach (string descriptor in inputs.EmbeddedPackages)
        {
            string zip = Path.ChangeExtension(descriptor, ".zip");
            if (!File.Exists(descriptor) || !File.Exists(zip))
                ImageException.Throw(ImageError.InputInvalid, $"embedded OS package {descriptor} needs {Path.GetFileName(zip)} beside it");
            string name = Path.GetFileNameWithoutExtension(descriptor);
            archive.AddFileFrom($"{InitramfsLayout.EmbeddedPackagesDirectory}/{name}.json", descriptor)
                .AddFileFrom($"{InitramfsLayout.EmbeddedPackagesDirectory}/{name}.zip", zip);
        }

        // stboot reads efivarfs on a UEFI machine: the STHostConfig variable when the image has no host configuration
        // file, and the SecureBoot variable it reports in any case. Debian builds efivarfs as a module
        // (CONFIG_EFIVAR_FS=m), so it goes in with the others (coldplug loads alias-less modules first, and stboot mounts
        // efivarfs after the modules; on a BIOS machine it loads and stays unused). A kernel with efivarfs built in has
        // no such module: nothing to add.
        IReadOnlyList<string> modules = inputs.Modules;
        ModuleTree? tree = null;
        if (!modules.Contains(EfiVariablesModule, StringComparer.Ordinal) && Directory.Exists(Path.Combine(inputs.ModulesRoot, inputs.KernelRelease)))
        {
            tree = ModuleTree.Open(inputs.KernelRelease, inputs.ModulesRoot);
            if (tree.Dependencies.PathOf(EfiVariablesModule) is not null)
                modules = [.. modules, EfiVariablesModule];
        }
        IReadOnlyList<string> loadOrder = [];
        if (modules.Count > 0)
            loadOrder = (tree ?? ModuleTree.Open(inputs.KernelRelease, inputs.ModulesRoot)).AddClosureTo(archive, modules);

        var summary = new StbootImageSummary(new FileInfo(inputs.Init).Length, loadOrder,
            archive.Entries.Select(e => e.Path).Order(StringComparer.Ordinal).ToList());
        return (archive, summary);
    }

    /// <summary>
    /// Builds and writes the image to <paramref name="output"/>, gzip-compressed unless <paramref name="compression"/>
    /// is <see cref="ImageCompression.None"/>: the kernel unpacks a plain newc archive with copies only, which under
    /// emulation (QEMU TCG) is about half a second faster than inflating the gzip one; the image is about twice as big.
    /// </summary>
    public static StbootImageSummary Write(StbootImageInputs inputs, Stream output, ImageCompression compression = ImageCompression.Gzip)
    {
        var (archive, summary) = Build(inputs);
        if (compression == ImageCompression.None)
            archive.WriteTo(output);
        else
            archive.WriteGzipTo(output);
        return summary;
    }
}
