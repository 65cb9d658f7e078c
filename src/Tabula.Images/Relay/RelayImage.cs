using Tabula.Fleet.Protocol;
using Tabula.Packaging.Cpio;
using Tabula.Images.Initramfs;
using Tabula.Images.KernelModules;
using Tabula.Packaging;

namespace Tabula.Images.Relay;

/// <summary>
/// Builds the relay OS package archive (System Transparency format, unsigned: the CLI writes the descriptor and
/// <c>tabula ospkg sign</c> adds signatures). The archive holds the kernel, the command line and a gzip'd cpio
/// initramfs with:
/// <list type="bullet">
/// <item>the common base (<see cref="InitramfsBase"/>) with /init = the tabula-relay agent, plus /tmp (1777) and /var;</item>
/// <item><see cref="InitramfsLayout.RelayConfig"/> (fleet URL) and <see cref="InitramfsLayout.FleetCa"/> (the pinned CA, re-encoded);</item>
/// <item>the requested kernel modules with their dependencies and bus transports, modules.dep and modules.alias (<see cref="ModuleTree.AddClosureTo"/>; the agent coldplugs them).</item>
/// </list>
/// Nothing in the image names a disk or swap: the root file system is the initramfs itself, and the kernel command line
/// must zero freed memory (<see cref="InitOnFree"/>). Inputs are validated first,
/// so a package whose agent could never reach its controller is refused here. Deterministic: the same inputs give the
/// same bytes (the cpio writer fixes order, mtimes, owners and inodes; gzip and zip carry no timestamps).
/// </summary>
public static class RelayImage
{
    /// <summary>The initramfs file name inside the archive (boot/initramfs.cpio.gz).</summary>
    public const string InitramfsName = "initramfs.cpio.gz";

    /// <summary>The kernel parameter every relay command line carries (freed memory zeroed).</summary>
    public const string InitOnFree = InitOnFreeKey + "1";

    const string InitOnFreeKey = "init_on_free=";

    /// <summary>/tmp is world-writable with the sticky bit, as everywhere.</summary>
    const UnixFileMode TmpMode = (UnixFileMode)0x3FF;

    /// <summary>
    /// Builds the initramfs (uncompressed entries) after validating the agent, the fleet URL and the CA.
    /// Returns the archive, the pinned certificates and the module load order.
    /// </summary>
    public static (CpioArchive Archive, IReadOnlyList<Certificate> FleetCa, IReadOnlyList<string> ModuleLoadOrder) BuildInitramfs(
        RelayImageInputs inputs)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        RelayConfig config = CreateConfig(inputs.FleetUrls);
        var (fleetCa, fleetCaPem) = ReadFleetCa(inputs.FleetCaFile);

        CpioArchive archive = InitramfsBase.Create(inputs.Agent)
            .AddDirectory("tmp", TmpMode)
            .AddDirectory("var")
            .AddFile(InitramfsLayout.RelayConfig, config.ToJson())
            .AddFile(InitramfsLayout.FleetCa, fleetCaPem);
        IReadOnlyList<string> loadOrder = inputs.Modules.Count > 0
            ? ModuleTree.Open(inputs.KernelRelease, inputs.ModulesRoot).AddClosureTo(archive, inputs.Modules)
            : [];
        return (archive, fleetCa, loadOrder);
    }

    /// <summary>
    /// A relay zeroes freed memory (issue 15): a customer's packets and keys must not linger in free pages until reused.
    /// The kernel takes the last <c>init_on_free=</c> it is given, so that one must be <c>init_on_free=1</c>.
    /// </summary>
    static void CheckCmdline(string cmdline)
    {
        ArgumentNullException.ThrowIfNull(cmdline);
        // Parameters after "--" go to /init, not to the kernel.
        var kernelPart = cmdline.Split(' ', StringSplitOptions.RemoveEmptyEntries).TakeWhile(t => t != "--");
        string? last = kernelPart.LastOrDefault(t => t.StartsWith(InitOnFreeKey, StringComparison.Ordinal));
        if (last != InitOnFree)
            ImageException.Throw(ImageError.InputInvalid,
                $"the relay's kernel command line must end its init_on_free settings with {InitOnFree} (freed memory zeroed), got \"{cmdline}\"");
    }

    /// <summary>relay.json through its owner (Tabula.Fleet.Protocol), so the agent will accept what is written.</summary>
    static RelayConfig CreateConfig(IReadOnlyList<string> fleetUrls)
    {
        try
        {
            return RelayConfig.Create(fleetUrls);
        }
        catch (RelayConfigException e)
        {
            ImageException.Throw(ImageError.InputInvalid, $"{e.Message}, got \"{string.Join("\", \"", fleetUrls)}\"", e);
            throw;
        }
    }

    /// <summary>Builds the initramfs and writes the OS package archive (zip) to <paramref name="output"/>.</summary>
    public static RelayImageSummary Write(RelayImageInputs inputs, Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        CheckCmdline(inputs.Cmdline);
        var (archive, fleetCa, loadOrder) = BuildInitramfs(inputs);
        string kernelPath = inputs.KernelPath;
        if (!File.Exists(kernelPath) || new FileInfo(kernelPath).Length == 0)
            ImageException.Throw(ImageError.InputInvalid, $"kernel {kernelPath} does not exist or is empty (install linux-image-{inputs.KernelRelease}, or pass the kernel)");

        // The gzip'd initramfs is held in memory (tens of MB at most; the size goal is 50 MB for the whole package).
        using var initramfs = new MemoryStream();
        long uncompressed = archive.WriteGzipTo(initramfs);
        initramfs.Position = 0;
        Manifest manifest;
        using (var kernel = File.OpenRead(kernelPath))
        {
            try
            {
                manifest = OsPackageArchiveWriter.Write(output, new OsPackageArchiveWriter.Inputs(kernel, Path.GetFileName(kernelPath),
                    initramfs, InitramfsName, inputs.Label ?? $"Tabula relay {inputs.KernelRelease}", inputs.Cmdline,
                    inputs.Release, inputs.MachineClass));
            }
            catch (Exception e) when (e is PackageFormatException or ArgumentException)
            {
                // The writer validates the manifest (command line length, NUL, file names) before it writes a byte.
                ImageException.Throw(ImageError.InputInvalid, e.Message, e);
                throw;
            }
        }
        return new RelayImageSummary(manifest, new FileInfo(kernelPath).Length, initramfs.Length, uncompressed,
            new FileInfo(inputs.Agent).Length, fleetCa, loadOrder, archive.Entries.Select(e => e.Path).Order(StringComparer.Ordinal).ToList());
    }

    /// <summary>
    /// Reads the CA file: PEM with at least one certificate and nothing else (a private key here would be published
    /// inside the package), each certificate parsed and valid now. Returns them and their canonical PEM.
    /// </summary>
    static (IReadOnlyList<Certificate> Certificates, byte[] Pem) ReadFleetCa(string path)
    {
        if (!File.Exists(path))
            ImageException.Throw(ImageError.InputInvalid, $"fleet CA {path} does not exist");
        var certificates = new List<Certificate>();
        try
        {
            foreach (PemBlock block in Pem.ReadAll(TrustPolicyFolder.ReadLimited(path, Packaging.Limits.MaxPemBytes)))
            {
                if (block.Label != "CERTIFICATE")
                    ImageException.Throw(ImageError.InputInvalid, $"fleet CA {path}: holds a {block.Label} block; only CERTIFICATE blocks may go into a package");
                certificates.Add(Certificate.Parse(block.Der));
            }
        }
        catch (Exception e) when (e is PackageFormatException or IOException)
        {
            ImageException.Throw(ImageError.InputInvalid, $"fleet CA {path}: {e.Message}", e);
        }
        if (certificates.Count == 0)
            ImageException.Throw(ImageError.InputInvalid, $"fleet CA {path}: no PEM CERTIFICATE block found");
        DateTimeOffset now = DateTimeOffset.UtcNow;
        foreach (Certificate certificate in certificates)
            if (!certificate.IsValidAt(now))
                ImageException.Throw(ImageError.InputInvalid,
                    $"fleet CA {path}: certificate \"{certificate.CommonName}\" is valid {certificate.NotBefore:u} … {certificate.NotAfter:u}, not now");
        string pem = string.Concat(certificates.Select(c => Packaging.Pem.EncodeCertificate(c.Der)));
        return (certificates, System.Text.Encoding.ASCII.GetBytes(pem));
    }
}
