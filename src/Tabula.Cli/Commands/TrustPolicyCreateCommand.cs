using System.CommandLine;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>`tabula trustpolicy create`: write a trust policy folder with Tabula.Packaging's writer.</summary>
internal static class TrustPolicyCreateCommand
{
    public static Command Create()
    {
        var roots = new Option<string>("--roots")
        {
            Description = "PEM file with the signing root certificate(s): the CA(s) that issued the signers' certificates " +
                          "(`tabula keygen root` writes one). Copied to ospkg_signing_root.pem",
            Required = true,
        };
        var threshold = new Option<int>("--threshold")
        {
            Description = "How many different signers (counted by public key) must have signed a package, 1-64", Required = true,
        };
        var tlsRoots = new Option<string?>("--tls-roots")
        {
            Description = "PEM file with the CA(s) stboot pins for HTTPS downloads (the provisioning server's ca.pem). Copied to " +
                          "tls_roots.pem; without it a network fetch can only use plain HTTP",
        };
        var fetchMethod = new Option<string>("--fetch-method")
        {
            Description = "network: download from the host configuration's ospkg_pointer (default); initramfs: boot a package " +
                          "embedded with `tabula image stboot --ospkg`",
            DefaultValueFactory = _ => "network",
        };
        fetchMethod.AcceptOnlyFromAmong("network", "initramfs");
        var output = new Option<string>("--out", "-o") { Description = "Folder to create (must not already hold a trust policy)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (what `trustpolicy check --json` prints for the new folder)" };
        var create = new Command("create",
            "Write an ST trust policy folder for `tabula image stboot --trust-policy` and the provisioning server.\n" +
            "Example: tabula trustpolicy create --roots root.pem --threshold 2 --tls-roots ca.pem --out trust/\n" +
            "The folder is read back with the same parser stboot uses before the command succeeds.")
        {
            roots, threshold, tlsRoots, fetchMethod, output, json,
        };
        create.SetAction(result => CliRun.Guard(() =>
        {
            int required = result.GetValue(threshold);
            if (required is < 1 or > Limits.MaxSignatures)
                throw new UsageException($"--threshold must be 1-{Limits.MaxSignatures}, got {required}");
            var signingRoots = ReadRoots(result.GetValue(roots)!, "--roots");
            var tls = result.GetValue(tlsRoots) is { } tlsPath ? ReadRoots(tlsPath, "--tls-roots") : null;
            var method = result.GetValue(fetchMethod) == "initramfs" ? FetchMethod.Initramfs : FetchMethod.Network;
            string directory = result.GetValue(output)!;
            try
            {
                new TrustPolicyFolder(new TrustPolicy(required, method), signingRoots, tls, null).Write(directory);
            }
            catch (IOException e) { throw new UsageException($"--out: {e.Message}"); }

            var written = TrustPolicyFolder.Load(directory);   // the reader stboot uses: what we wrote must be what it reads
            var warnings = new List<string>();
            var now = DateTimeOffset.UtcNow;
            foreach (var root in written.SigningRoots.Concat(written.TlsRoots ?? []))
                if (!root.IsValidAt(now))
                    warnings.Add($"certificate {root.CommonName} is not valid now ({root.NotBefore:yyyy-MM-dd} … {root.NotAfter:yyyy-MM-dd})");
            if (method == FetchMethod.Network && tls is null)
                warnings.Add("fetch method is network but no --tls-roots: stboot could only use plain HTTP");
            string summary = $"threshold {written.Policy.SignatureThreshold}, fetch {written.Policy.FetchMethod.ToString().ToLowerInvariant()}, " +
                             $"{written.SigningRoots.Count} signing root(s), {(written.TlsRoots is null ? "no" : written.TlsRoots.Count.ToString())} TLS root(s)";
            var report = new CheckOutput(true, directory, null, summary, null, warnings);
            if (result.GetValue(json))
                CliJsonContext.Print(report, CliJsonContext.Default.CheckOutput);
            else
            {
                Console.WriteLine($"{directory}: {summary}");
                foreach (string warning in warnings) CliRun.Warn(warning);
            }
            return ExitCode.Ok;
        }));
        return create;
    }

    static IReadOnlyList<Certificate> ReadRoots(string path, string option)
    {
        IReadOnlyList<Certificate> certificates;
        try { certificates = Certificate.ParsePemBundle(CliRun.ReadFile(path, Limits.MaxPemBytes, option)); }
        catch (PackageFormatException e) { throw new UsageException($"{option} {path}: {e.Message}"); }
        return certificates.Count > 0 ? certificates : throw new UsageException($"{option} {path} holds no certificate");
    }
}
