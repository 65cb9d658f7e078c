using System.CommandLine;
using Tabula.Images;
using Tabula.Images.Stboot;
using Tabula.Lab;

namespace Tabula.Cli.Commands;

/// <summary>`tabula image stboot`: the deterministic stboot initramfs (Tabula.Images); `image relay` is in ImageRelayCommand.</summary>
internal static class ImageCommand
{
    public static Command Create()
    {
        var trustPolicy = new Option<string>("--trust-policy") { Description = "ST trust policy folder (trust_policy.json, ospkg_signing_root.pem, tls_roots.pem, …)", Required = true };
        var hostConfig = new Option<string?>("--host-config") { Description = "host_configuration.json to embed (omit to use the machine's STHostConfig EFI variable)" };
        var release = new Option<string>("--kernel-release") { Description = "Kernel release of the stboot kernel (its modules come from --modules-root/RELEASE)", Required = true };
        var modules = new Option<string>("--modules") { Description = "Comma-separated module names; their closure from modules.dep is added (e.g. virtio_net,virtio_pci)", DefaultValueFactory = _ => "" };
        var modulesRoot = new Option<string>("--modules-root") { Description = "Where module trees live", DefaultValueFactory = _ => "/lib/modules" };
        var init = new Option<string?>("--init") { Description = "The static tabula-boot binary for /init (default: $TABULA_BOOT_BINARY, tabula-boot beside tabula, or out/boot/tabula-boot in the repository checkout, published there first when missing or older than its sources, as `lab up` does)" };
        var ospkg = new Option<string[]>("--ospkg") { Description = "Embed NAME.json + NAME.zip under /ospkg/ (initramfs fetch method); repeatable", AllowMultipleArgumentsPerToken = false };
        var output = new Option<string>("--out", "-o") { Description = "Output file (gzip-compressed cpio unless --compression none)", Required = true };
        var compression = new Option<string>("--compression")
        {
            Description = "gzip (default) or none: a plain cpio is bigger but the kernel unpacks it without inflating (faster under emulation)",
            DefaultValueFactory = _ => "gzip",
        };
        compression.AcceptOnlyFromAmong("gzip", "none");
        var stboot = new Command("stboot",
            "Build the stboot initramfs: /init, trust policy, host configuration, module closure, device nodes. Same inputs give the same bytes.")
        {
            trustPolicy, hostConfig, release, modules, modulesRoot, init, ospkg, output, compression,
        };
        stboot.SetAction(result => CliRun.Guard(() =>
        {
            string initPath = result.GetValue(init) ?? FindBinary(NativeBinaries.Boot, "--init");
            var inputs = new StbootImageInputs(initPath, result.GetValue(trustPolicy)!, result.GetValue(hostConfig), result.GetValue(release)!,
                result.GetValue(modules)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            {
                ModulesRoot = result.GetValue(modulesRoot)!,
                EmbeddedPackages = result.GetValue(ospkg) ?? [],
            };
            var format = result.GetValue(compression) == "none" ? ImageCompression.None : ImageCompression.Gzip;
            string outPath = result.GetValue(output)!;
            StbootImageSummary summary;
            try { summary = CliRun.WriteAtomically(outPath, file => StbootImage.Write(inputs, file, format)); }
            catch (ImageException e) { throw new UsageException(e.Message); }
            Console.WriteLine($"{outPath}: {new FileInfo(outPath).Length} bytes ({(format == ImageCompression.None ? "uncompressed" : "gzip")}), /init {summary.InitBytes} bytes ({initPath}), " +
                              $"{summary.Paths.Count} entries, {summary.ModuleLoadOrder.Count} modules");
            foreach (string module in summary.ModuleLoadOrder)
                Console.WriteLine($"  module {module}");
            return ExitCode.Ok;
        }));
        return new Command("image", "Build boot images and OS packages.") { stboot, ImageRelayCommand.Create() };
    }

    /// <summary>
    /// The static program to embed as /init when <paramref name="option"/> is not given: found or published by the one
    /// code path the lab uses (<see cref="NativeBinaries.Find"/>); progress goes to stderr, so stdout stays the result.
    /// </summary>
    internal static string FindBinary(NativeBinaries.Program program, string option)
    {
        try { return NativeBinaries.Find(program, message => Console.Error.WriteLine($"tabula: {message}")); }
        catch (LabException e) { throw new UsageException($"{e.Message} (or pass {option})"); }
    }
}
