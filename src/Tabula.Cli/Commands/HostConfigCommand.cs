using System.CommandLine;
using Tabula.Images.Uefi;
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
        return new Command("hostconfig", "Host configurations: the per-machine network and package pointer stboot reads.") { check, Efivar() };
    }

    /// <summary>`tabula hostconfig efivar FILE --out VARS.fd`: the host configuration as the STHostConfig variable in a copy of OVMF's variable store.</summary>
    static Command Efivar()
    {
        var file = new Argument<string>("file") { Description = "host_configuration.json (checked as stboot reads it)" };
        var output = new Option<string>("--out", "-o") { Description = "The variable store to write (QEMU's second pflash: -drive if=pflash,unit=1,file=VARS.fd)", Required = true };
        var template = new Option<string>("--vars")
        {
            Description = "The variable store to start from (left unchanged); may be --out itself to update it",
            DefaultValueFactory = _ => "/usr/share/OVMF/OVMF_VARS_4M.fd",
        };
        var efivar = new Command("efivar",
            "Put a host configuration into an OVMF variable store as " + StHostConfigVariable.FullName + " (non-volatile, boot and runtime access), " +
            "for an stboot image built without --host-config. Exit 0 written, 2 invalid input.")
        {
            file, output, template,
        };
        efivar.SetAction(result => CliRun.Guard(() =>
        {
            string path = result.GetValue(file)!;
            byte[] json = CliRun.ReadFile(path, Limits.MaxConfigJsonBytes, "host configuration");
            try { HostConfig.Parse(json); }
            catch (PackageFormatException e) { throw new UsageException($"{path}: invalid: {CliRun.OneLine(e.Message)}"); }
            string from = result.GetValue(template)!, outPath = result.GetValue(output)!;
            byte[] vars = CliRun.ReadFile(from, 64 << 20, "variable store");
            byte[] written;
            try
            {
                var store = OvmfVariableStore.Parse(vars);
                store.Set(StHostConfigVariable.With(json));
                written = store.ToArray();
                Console.WriteLine($"{outPath}: {StHostConfigVariable.FullName} = {json.Length} bytes from {path}; {store.Variables.Count} variables, {store.FreeBytes} bytes free");
            }
            catch (Tabula.Images.ImageException e) { throw new UsageException($"{from}: {e.Message}"); }
            CliRun.WriteAtomically(outPath, stream => { stream.Write(written); return 0; });
            return ExitCode.Ok;
        }));
        return efivar;
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
