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
            var freshness = Describe(folder);
            if (freshness is not null)
            {
                summary += ", " + Summary(freshness);
                if (folder.TlsRoots is null)
                    warnings.Add("freshness is on but tls_roots.pem is missing: stboot cannot check the controller's TLS certificate");
                if (folder.Policy.FetchMethod == FetchMethod.Initramfs)
                    warnings.Add("freshness with fetch method initramfs: stboot still needs the network to ask for a ticket");
            }
            else
                summary += ", freshness off";
            summary += ", " + MeasuredBootSummary(folder.Policy);
            return HostConfigCommand.Report(result.GetValue(json),
                new CheckOutput(true, path, null, summary, null, warnings, freshness, MeasuredBoot(folder.Policy)));
        }));
        return check;
    }

    /// <summary>The folder's freshness policy for --json, or null when it has none.</summary>
    internal static FreshnessOutput? Describe(TrustPolicyFolder folder) =>
        folder.Policy.Freshness is { } f
            ? new FreshnessOutput(FreshnessPolicy.Spell(f.Mode), f.MinRelease, f.MachineClass, f.TicketUrl.OriginalString,
                folder.TicketRoot is { } key ? Packaging.Hex.Encode(System.Security.Cryptography.SHA256.HashData(key)) : null)
            : null;

    /// <summary>The policy's <c>tabula_measured_boot</c> for --json: "required", "optional", or "unset".</summary>
    internal static string MeasuredBoot(TrustPolicy policy) =>
        policy.MeasuredBoot is { } mode ? MeasuredBootModes.Spell(mode) : "unset";

    /// <summary>One summary phrase: <c>measured boot required</c>, or what stboot does without the key.</summary>
    internal static string MeasuredBootSummary(TrustPolicy policy) =>
        policy.MeasuredBoot is { } mode ? "measured boot " + MeasuredBootModes.Spell(mode)
            : "measured boot unset (stboot measures when it finds a TPM, boots without one)";

    /// <summary>One summary phrase: <c>freshness required (min_release 1, class relay, ticket URL, ticket root sha256 HEX)</c>.</summary>
    internal static string Summary(FreshnessOutput f) =>
        $"freshness {f.Mode} (min_release {f.MinRelease}, class {f.MachineClass ?? "any"}, ticket {f.TicketUrl}, ticket root sha256 {f.TicketRootSha256})";
}
