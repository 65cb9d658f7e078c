using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula ospkg create`: a deterministic archive and an unsigned descriptor.</summary>
internal static class OsPkgCreateCommand
{
    public static Command Create()
    {
        var kernel = new Option<string>("--kernel") { Description = "Kernel image (bzImage)", Required = true };
        var initramfs = new Option<string>("--initramfs") { Description = "Initramfs (cpio, may be compressed)", Required = true };
        var cmdline = new Option<string>("--cmdline") { Description = "Kernel command line for the booted OS", DefaultValueFactory = _ => "console=ttyS0,115200" };
        var label = new Option<string?>("--label") { Description = "Human label (default: \"System Transparency OS package <kernel file>\")" };
        var url = new Option<string?>("--url") { Description = "os_pkg_url: where the archive will be served (absolute, or relative to the descriptor URL; default: NAME.zip)" };
        var output = new Option<string>("--out", "-o") { Description = "Output name: writes NAME.zip and NAME.json", Required = true };
        var force = new Option<bool>("--force") { Description = "Overwrite existing files" };
        var command = new Command("create",
            "Build NAME.zip (deterministic: same inputs give the same bytes) and an unsigned NAME.json.")
        {
            kernel, initramfs, cmdline, label, url, output, force,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            string name = result.GetValue(output)!;
            if (name.EndsWith(".zip", StringComparison.Ordinal) || name.EndsWith(".json", StringComparison.Ordinal))
                name = Path.ChangeExtension(name, null);
            string zipPath = name + ".zip", jsonPath = name + ".json";
            if (!result.GetValue(force))
                foreach (var path in new[] { zipPath, jsonPath })
                    if (File.Exists(path)) throw new UsageException($"{path} exists; pass --force to overwrite it");
            string kernelPath = result.GetValue(kernel)!, initramfsPath = result.GetValue(initramfs)!;
            foreach (var (path, what) in new[] { (kernelPath, "kernel"), (initramfsPath, "initramfs") })
            {
                if (!File.Exists(path)) throw new UsageException($"{what} {path} does not exist");
                if (new FileInfo(path).Length == 0) throw new UsageException($"{what} {path} is empty");
            }
            string kernelName = Path.GetFileName(kernelPath);
            string archiveUrl = result.GetValue(url) ?? Path.GetFileName(zipPath);
            if (!archiveUrl.EndsWith(".zip", StringComparison.Ordinal))
                throw new UsageException($"--url must end in .zip (stboot requires it), got \"{archiveUrl}\"");

            // Write to a temporary file and rename, so a failure never leaves a half-written archive.
            if (Path.GetDirectoryName(Path.GetFullPath(zipPath)) is { } directory) Directory.CreateDirectory(directory);
            string temporary = zipPath + ".tmp";
            Manifest manifest;
            try
            {
                using (var kernelStream = File.OpenRead(kernelPath))
                using (var initramfsStream = File.OpenRead(initramfsPath))
                using (var zip = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
                {
                    manifest = OsPackageArchiveWriter.Write(zip, new OsPackageArchiveWriter.Inputs(
                        kernelStream, kernelName, initramfsStream, Path.GetFileName(initramfsPath),
                        result.GetValue(label) ?? $"System Transparency OS package {kernelName}", result.GetValue(cmdline)!));
                    zip.Flush(flushToDisk: true);
                }
                File.Move(temporary, zipPath, overwrite: true);
            }
            finally { File.Delete(temporary); }
            File.WriteAllBytes(jsonPath, Descriptor.Unsigned(archiveUrl).ToJson());

            byte[] digest;
            using (var zip = File.OpenRead(zipPath)) digest = PackageVerifier.HashArchive(zip);
            Console.WriteLine($"created {zipPath} ({new FileInfo(zipPath).Length} bytes, sha256 {Hex.Encode(digest)})");
            Console.WriteLine($"created {jsonPath} (unsigned; os_pkg_url {archiveUrl})");
            Console.WriteLine($"  kernel {manifest.KernelPath}, initramfs {manifest.InitramfsPath}, cmdline \"{manifest.Cmdline}\"");
            return ExitCode.Ok;
        }));
        return command;
    }
}
