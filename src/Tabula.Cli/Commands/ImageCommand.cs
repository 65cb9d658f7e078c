using System.CommandLine;
using Tabula.Images;
using System.Diagnostics;
using Tabula.Images.Stboot;
using Tabula.Images.Uefi;
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
        var format = new Option<string>("--format")
        {
            Description = "initramfs (default): the cpio archive for -kernel/-initrd or a boot loader; uki: one EFI program (systemd EFI stub, .osrel, .cmdline, .initrd, .linux); " +
                          "iso: a hybrid ISO whose EFI System Partition holds the UKI as EFI/BOOT/BOOTX64.EFI (CD, virtual media, USB stick)",
            DefaultValueFactory = _ => "initramfs",
        };
        format.AcceptOnlyFromAmong("initramfs", "uki", "iso");
        var kernel = new Option<string?>("--kernel") { Description = "uki/iso: the stboot kernel's bzImage (default /boot/vmlinuz-RELEASE)" };
        var cmdline = new Option<string>("--cmdline")
        {
            Description = "uki/iso: the kernel command line in .cmdline (under Secure Boot the only one); stboot's options go after \"--\"",
            DefaultValueFactory = _ => DefaultUkiCmdline,
        };
        var stub = new Option<string>("--efi-stub") { Description = "uki/iso: the systemd EFI stub (Debian's systemd-boot-efi)", DefaultValueFactory = _ => DefaultStub };
        var signKey = new Option<string?>("--sign-key") { Description = "uki/iso: PEM private key of the Secure Boot db certificate; signs the UKI (sbsign)" };
        var signCert = new Option<string?>("--sign-cert") { Description = "uki/iso: PEM certificate for --sign-key" };
        var stboot = new Command("stboot",
            "Build the stboot initramfs, or a UKI or hybrid ISO around it: /init, trust policy, host configuration, module closure, device nodes. Same inputs give the same bytes.")
        {
            trustPolicy, hostConfig, release, modules, modulesRoot, init, ospkg, output, compression, format, kernel, cmdline, stub, signKey, signCert,
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
            var packing = result.GetValue(compression) == "none" ? ImageCompression.None : ImageCompression.Gzip;
            string outPath = result.GetValue(output)!;
            string kind = result.GetValue(format)!;
            string? key = result.GetValue(signKey), cert = result.GetValue(signCert);
            if ((key is null) != (cert is null))
                throw new UsageException("--sign-key and --sign-cert go together");
            if (kind == "initramfs" && key is not null)
                throw new UsageException("--sign-key signs a UKI: use --format uki or iso");
            var clock = Stopwatch.StartNew();
            StbootImageSummary summary;
            try
            {
                if (kind == "initramfs")
                {
                    summary = CliRun.WriteAtomically(outPath, file => StbootImage.Write(inputs, file, packing));
                    Console.WriteLine($"{outPath}: {new FileInfo(outPath).Length} bytes ({(packing == ImageCompression.None ? "uncompressed" : "gzip")}), /init {summary.InitBytes} bytes ({initPath}), " +
                                      $"{summary.Paths.Count} entries, {summary.ModuleLoadOrder.Count} modules");
                }
                else
                {
                    using var initramfs = new MemoryStream();
                    summary = StbootImage.Write(inputs, initramfs, packing);
                    string kernelPath = result.GetValue(kernel) ?? $"/boot/vmlinuz-{inputs.KernelRelease}";
                    byte[] uki = UkiImage.Build(new UkiInputs(ReadInput(result.GetValue(stub)!, "--efi-stub"), ReadInput(kernelPath, "--kernel"),
                        initramfs.ToArray(), result.GetValue(cmdline)!));
                    if (key is not null)
                        uki = UkiSigner.Sign(uki, key, cert!);
                    if (kind == "uki")
                        CliRun.WriteAtomically(outPath, file => { file.Write(uki); return 0; });
                    else
                        IsoImage.Write(uki, outPath);
                    Console.WriteLine($"{outPath}: {new FileInfo(outPath).Length} bytes ({kind}{(key is null ? "" : ", signed")}), UKI {uki.Length} bytes " +
                                      $"(initramfs {initramfs.Length} bytes, kernel {new FileInfo(kernelPath).Length} bytes {kernelPath}), /init {summary.InitBytes} bytes ({initPath}), " +
                                      $"{summary.Paths.Count} entries, {summary.ModuleLoadOrder.Count} modules, built in {clock.ElapsedMilliseconds} ms");
                }
            }
            catch (ImageException e) { throw new UsageException(e.Message); }
            foreach (string module in summary.ModuleLoadOrder)
                Console.WriteLine($"  module {module}");
            return ExitCode.Ok;
        }));
        return new Command("image", "Build boot images and OS packages.") { stboot, ImageRelayCommand.Create() };
    }

    /// <summary>Debian's systemd-boot-efi stub (scripts/apt-packages).</summary>
    internal const string DefaultStub = UkiImage.DebianStub;

    /// <summary>The UKI's command line unless --cmdline says otherwise: the kernel's console on the first serial port
    /// and the screen (the last console= is /dev/console, where stboot writes).</summary>
    internal const string DefaultUkiCmdline = "console=tty0 console=ttyS0,115200n8";

    static byte[] ReadInput(string path, string option)
    {
        try { return File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new UsageException($"{option} {path}: {e.Message}"); }
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
