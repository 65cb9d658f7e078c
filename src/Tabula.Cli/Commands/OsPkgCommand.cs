using System.CommandLine;

namespace Tabula.Cli.Commands;

/// <summary>`tabula ospkg …`: create, sign, verify and inspect OS packages.</summary>
internal static class OsPkgCommand
{
    public static Command Create() => new("ospkg", "OS packages: NAME.zip (kernel, initramfs, manifest) + NAME.json (signatures).")
    {
        OsPkgCreateCommand.Create(),
        OsPkgSignCommand.Create(),
        OsPkgVerifyCommand.Create(),
        OsPkgInspectCommand.Create(),
    };

    /// <summary>The archive beside a descriptor: NAME.json → NAME.zip.</summary>
    public static string ArchiveBeside(string descriptorPath) => Path.ChangeExtension(descriptorPath, ".zip");
}
