using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula hostconfig check`: validate a host configuration as stboot reads it.</summary>
internal static class HostConfigCommand
{
    public static Command Create()
    {
        var file = new Argument<string>("file") { Description = "host_configuration.json (text before a \"---\" line is skipped, as in stmgr's samples)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var check = new Command("check", "Check a host configuration: current st-1.x fields and legacy ones (dns string, provisioning_urls, …). Exit 0 valid, 2 invalid.")
        {
            file, json,
        };
        check.SetAction(result => CliRun.Guard(() =>
        {
            string path = result.GetValue(file)!;
            byte[] bytes = CliRun.ReadFile(path, Limits.MaxConfigJsonBytes, "host configuration");
            HostConfig config;
            try { config = HostConfig.Parse(bytes); }
            catch (PackageFormatException e)
            {
                return Report(result.GetValue(json), new CheckOutput(false, path, e.Message, null, null, null));
            }
            var warnings = new List<string>();
            if (config.LegacyFields.Count > 0)
                warnings.Add($"legacy fields mapped or ignored: {string.Join(", ", config.LegacyFields)}");
            foreach (var pointer in config.OsPackagePointers)
                if (Uri.TryCreate(pointer, UriKind.Absolute, out var uri) && uri.Scheme == "http")
                    warnings.Add($"{pointer} uses plain HTTP: integrity comes from signatures, but the request is visible on the wire");
            return Report(result.GetValue(json), new CheckOutput(true, path, null, config.ToString(), config.LegacyFields, warnings));
        }));
        return new Command("hostconfig", "Host configurations: the per-machine network and package pointer stboot reads.") { check };
    }

    /// <summary>Prints a check result and returns 0 (valid) or 2 (invalid).</summary>
    internal static int Report(bool json, CheckOutput output)
    {
        if (json) CliJsonContext.Print(output, CliJsonContext.Default.CheckOutput);
        else if (output.Valid)
        {
            Console.WriteLine($"{output.File}: valid: {output.Summary}");
            foreach (var w in output.Warnings ?? []) CliRun.Warn(w);
        }
        else Console.Error.WriteLine($"{output.File}: invalid: {CliRun.OneLine(output.Error ?? "")}");
        return output.Valid ? ExitCode.Ok : ExitCode.BadInput;
    }
}
