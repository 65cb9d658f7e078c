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
        var output = new OsPackageOutput();
        var releaseOptions = new ReleaseOptions();
        var command = new Command("create",
            "Build NAME.zip (deterministic: same inputs give the same bytes) and an unsigned NAME.json.")
        {
            kernel, initramfs, cmdline, label,
        };
        foreach (var option in releaseOptions.Options.Concat(output.Options)) command.Options.Add(option);
        command.SetAction(result => CliRun.Guard(() =>
        {
            var (release, machineClass) = releaseOptions.Resolve(result);
            var target = output.Resolve(result);
            string kernelPath = result.GetValue(kernel)!, initramfsPath = result.GetValue(initramfs)!;
            foreach (var (path, what) in new[] { (kernelPath, "kernel"), (initramfsPath, "initramfs") })
            {
                if (!File.Exists(path)) throw new UsageException($"{what} {path} does not exist");
                if (new FileInfo(path).Length == 0) throw new UsageException($"{what} {path} is empty");
            }
            string kernelName = Path.GetFileName(kernelPath);
            var (manifest, zipBytes, digest) = target.Write(zip =>
            {
                using var kernelStream = File.OpenRead(kernelPath);
                using var initramfsStream = File.OpenRead(initramfsPath);
                return OsPackageArchiveWriter.Write(zip, new OsPackageArchiveWriter.Inputs(
                    kernelStream, kernelName, initramfsStream, Path.GetFileName(initramfsPath),
                    result.GetValue(label) ?? $"System Transparency OS package {kernelName}", result.GetValue(cmdline)!, release, machineClass));
            });
            target.Print(zipBytes, digest, manifest);
            return ExitCode.Ok;
        }));
        return command;
    }
}
