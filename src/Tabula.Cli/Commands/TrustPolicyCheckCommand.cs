using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula trustpolicy check`: validate an ST trust policy folder.</summary>
internal static class TrustPolicyCheckCommand
{
    public static Command Create()
    {
        var directory = new Argument<string>("dir") { Description = "Folder with trust_policy.json, ospkg_signing_root.pem, [tls_roots.pem], [ospkg_trust_policy]" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var check = new Command("check", "Check a trust policy folder as stboot loads it. Exit 0 valid, 2 invalid.") { directory, json };
        check.SetAction(result => CliRun.Guard(() =>
        {
            string path = result.GetValue(directory)!;
            if (!Directory.Exists(path)) throw new UsageException($"{path} is not a folder");
            TrustPolicyFolder folder;
            try { folder = TrustPolicyFolder.Load(path); }
            catch (Exception e) when (e is PackageFormatException or FileNotFoundException)
            {
                return HostConfigCommand.Report(result.GetValue(json), new CheckOutput(false, path, e.Message, null, null, null));
            }
            var warnings = new List<string>();
            var now = DateTimeOffset.UtcNow;
            if (folder.Policy.IsLegacy)
                warnings.Add("security_configuration.json is the pre-2022 format; current stboot reads trust_policy.json");
            foreach (var root in folder.SigningRoots)
                if (!root.IsValidAt(now))
                    warnings.Add($"signing root {root.CommonName} is not valid now ({root.NotBefore:yyyy-MM-dd} … {root.NotAfter:yyyy-MM-dd})");
            if (folder.Policy.FetchMethod == FetchMethod.Network && folder.TlsRoots is null)
                warnings.Add("fetch method is network but tls_roots.pem is missing: stboot could only use plain HTTP");
            string summary = $"threshold {folder.Policy.SignatureThreshold}, fetch {folder.Policy.FetchMethod.ToString().ToLowerInvariant()}, " +
                             $"{folder.SigningRoots.Count} signing root(s), " +
                             $"{(folder.TlsRoots is null ? "no" : folder.TlsRoots.Count.ToString())} TLS root(s), " +
                             $"Sigsum {(folder.Sigsum is null ? "off" : $"on ({folder.Sigsum.Logs.Count} logs, {folder.Sigsum.Witnesses.Count} witnesses)")}";
            return HostConfigCommand.Report(result.GetValue(json), new CheckOutput(true, path, null, summary, null, warnings));
        }));
        return check;
    }
}
