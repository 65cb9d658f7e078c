using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula ospkg verify`: exactly the check stboot makes before it boots a package.</summary>
internal static class OsPkgVerifyCommand
{
    public static Command Create()
    {
        var descriptor = new Option<string>("--descriptor", "-d") { Description = "NAME.json", Required = true };
        var archive = new Option<string?>("--archive", "-a") { Description = "NAME.zip (default: beside the descriptor)" };
        var roots = new Option<string?>("--roots") { Description = "PEM file with one or more signing root certificates" };
        var threshold = new Option<int?>("--threshold") { Description = "Valid signatures from distinct keys needed (≥ 1)" };
        var sigsum = new Option<string?>("--sigsum-policy") { Description = "Sigsum policy file: every counted signature must then be a Sigsum proof" };
        var trustPolicy = new Option<string?>("--trust-policy") { Description = "ST trust policy folder (trust_policy.json, ospkg_signing_root.pem, optional ospkg_trust_policy) instead of --roots/--threshold" };
        var at = new Option<string?>("--at") { Description = "Check certificate validity at this RFC 3339 time (default: now)" };
        var json = new Option<bool>("--json") { Description = "Print one JSON object: accepted, found, valid, required, signatures[]" };
        var command = new Command("verify",
            "Verify an OS package as stboot does. Exit 0 accepted, 1 rejected (too few valid signatures), 2 unusable input.")
        {
            descriptor, archive, roots, threshold, sigsum, trustPolicy, at, json,
        };
        command.SetAction(result => CliRun.Guard(() =>
        {
            VerificationPolicy policy;
            if (result.GetValue(trustPolicy) is { } folder)
            {
                if (result.GetValue(roots) is not null || result.GetValue(threshold) is not null || result.GetValue(sigsum) is not null)
                    throw new UsageException("--trust-policy replaces --roots, --threshold and --sigsum-policy; give one or the other");
                try { policy = VerificationPolicy.FromTrustPolicyDirectory(folder); }
                catch (PackageFormatException e) { throw e.WithContext(folder); }
            }
            else
            {
                string rootsPath = result.GetValue(roots) ?? throw new UsageException("give --roots and --threshold, or --trust-policy");
                int required = result.GetValue(threshold) ?? throw new UsageException("--threshold is required with --roots");
                if (required < 1) throw new UsageException($"--threshold must be at least 1, got {required}");
                var rootCertificates = CliRun.ParseFile(rootsPath, Limits.MaxPemBytes, "roots", b => Certificate.ParsePemBundle(b));
                var sigsumPolicy = result.GetValue(sigsum) is { } sigsumPath
                    ? CliRun.ParseFile(sigsumPath, Limits.MaxSigsumPolicyBytes, "Sigsum policy", b => SigsumPolicy.Parse(b))
                    : null;
                policy = new VerificationPolicy(rootCertificates, required, sigsumPolicy);
            }
            var when = result.GetValue(at) is { } atText ? CliRun.ParseTime(atText, "--at") : DateTimeOffset.UtcNow;
            string descriptorPath = result.GetValue(descriptor)!;
            var parsed = CliRun.ParseFile(descriptorPath, Limits.MaxDescriptorBytes, "descriptor", b => Descriptor.Parse(b));
            string archivePath = result.GetValue(archive) ?? OsPkgCommand.ArchiveBeside(descriptorPath);
            if (!File.Exists(archivePath)) throw new UsageException($"archive {archivePath} does not exist");
            byte[] digest;
            using (var zip = new FileStream(archivePath, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan))
                digest = PackageVerifier.HashArchive(zip);

            var verdict = PackageVerifier.Verify(parsed, digest, policy, when);
            if (result.GetValue(json))
                CliJsonContext.Print(ToOutput(verdict), CliJsonContext.Default.VerifyOutput);
            else
            {
                foreach (var check in verdict.Checks)
                    Console.WriteLine($"signature {check.Index}: {(check.Valid ? "valid" : "skipped")}: {check.Reason}" +
                                      (check.SignerKeySha256 is { } k ? $" (key sha256 {k[..16]}…)" : ""));
                Console.WriteLine($"{(verdict.Accepted ? "ACCEPTED" : "REJECTED")}: {verdict.Summary}; archive sha256 {verdict.ArchiveSha256}");
            }
            return verdict.Accepted ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    internal static VerifyOutput ToOutput(VerifyResult verdict) => new(
        verdict.Accepted, verdict.Found, verdict.Valid, verdict.Required, verdict.ArchiveSha256,
        [.. verdict.Checks.Select(c => new SignatureOutput(c.Index, c.Valid, c.Reason, c.Rejection?.ToString(), c.SignerKeySha256))]);
}
