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
        var freshness = new Option<string?>("--freshness")
        {
            Description = "Boot tickets (issue 16): required: stboot boots only with a valid ticket from the fleet controller (waits " +
                          "and retries otherwise); optional: it boots when the controller is unreachable and says UNFRESH. Needs " +
                          "--ticket-url and --ticket-root",
        };
        freshness.AcceptOnlyFromAmong("required", "optional");
        var minRelease = new Option<long?>("--min-release")
        {
            Description = $"Floor baked into stboot: it never boots a package whose manifest release is below N (0-{Releases.MaxRelease}, default 0)",
        };
        var machineClass = new Option<string?>("--machine-class") { Description = "The only machine class stboot boots (a-z, 0-9, -), e.g. relay" };
        var ticketUrl = new Option<string?>("--ticket-url")
        {
            Description = "Where stboot asks for its ticket: https://CONTROLLER/boot/v1/ticket (TLS checked against --tls-roots)",
        };
        var ticketRoot = new Option<string?>("--ticket-root")
        {
            Description = "PEM \"PUBLIC KEY\" of the controller's ticket key (`tabula fleet ticket-key --out`); copied to ticket_root.pem",
        };
        var measuredBoot = new Option<string?>("--measured-boot")
        {
            Description = "Measured boot (issue 19): required: stboot boots only once it has measured into a TPM (PCR 12-14, waits " +
                          "and retries without one); optional: it measures when there is a TPM and boots anyway without. Default: " +
                          "the key is left out, which stboot reads as optional (upstream's best effort)",
        };
        measuredBoot.AcceptOnlyFromAmong("required", "optional");
        var output = new Option<string>("--out", "-o") { Description = "Folder to create (must not already hold a trust policy)", Required = true };
        var json = new Option<bool>("--json") { Description = "Print one JSON object (what `trustpolicy check --json` prints for the new folder)" };
        var create = new Command("create",
            "Write an ST trust policy folder for `tabula image stboot --trust-policy` and the provisioning server.\n" +
            "Example: tabula trustpolicy create --roots root.pem --threshold 2 --tls-roots ca.pem --out trust/\n" +
            "With boot tickets: ... --freshness required --min-release 1 --machine-class relay \\\n" +
            "           --ticket-url https://10.198.0.1:8443/boot/v1/ticket --ticket-root ticket_root.pem\n" +
            "The folder is read back with the same parser stboot uses before the command succeeds.")
        {
            roots, threshold, tlsRoots, fetchMethod, freshness, minRelease, machineClass, ticketUrl, ticketRoot, measuredBoot, output, json,
        };
        create.SetAction(result => CliRun.Guard(() =>
        {
            int required = result.GetValue(threshold);
            if (required is < 1 or > Limits.MaxSignatures)
                throw new UsageException($"--threshold must be 1-{Limits.MaxSignatures}, got {required}");
            var signingRoots = ReadRoots(result.GetValue(roots)!, "--roots");
            var tls = result.GetValue(tlsRoots) is { } tlsPath ? ReadRoots(tlsPath, "--tls-roots") : null;
            var method = result.GetValue(fetchMethod) == "initramfs" ? FetchMethod.Initramfs : FetchMethod.Network;
            var (freshnessPolicy, ticketKey) = ReadFreshness(result, freshness, minRelease, machineClass, ticketUrl, ticketRoot);
            if (freshnessPolicy is not null && tls is null)
                throw new UsageException("--freshness needs --tls-roots: stboot checks the controller's TLS certificate against them");
            string directory = result.GetValue(output)!;
            try
            {
                new TrustPolicyFolder(new TrustPolicy(required, method)
                    {
                        Freshness = freshnessPolicy, MeasuredBoot = MeasuredBootModes.Parse(result.GetValue(measuredBoot)),
                    }, signingRoots, tls, null) { TicketRoot = ticketKey }
                    .Write(directory);
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
            var fresh = TrustPolicyCheckCommand.Describe(written);
            if (fresh is not null)
                summary += ", " + TrustPolicyCheckCommand.Summary(fresh);
            if (written.Policy.MeasuredBoot is not null)
                summary += ", " + TrustPolicyCheckCommand.MeasuredBootSummary(written.Policy);
            var report = new CheckOutput(true, directory, null, summary, null, warnings, fresh, TrustPolicyCheckCommand.MeasuredBoot(written.Policy));
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

    static (FreshnessPolicy?, byte[]?) ReadFreshness(ParseResult result, Option<string?> freshness, Option<long?> minRelease,
        Option<string?> machineClass, Option<string?> ticketUrl, Option<string?> ticketRoot)
    {
        if (result.GetValue(freshness) is not { } modeText)
        {
            foreach (var option in new Option[] { minRelease, machineClass, ticketUrl, ticketRoot })
                if (result.GetResult(option) is not null)
                    throw new UsageException($"{option.Name} needs --freshness required|optional");
            return (null, null);
        }
        FreshnessPolicy.TryParseMode(modeText, out var mode);
        long floor = result.GetValue(minRelease) ?? 0;
        if (!Releases.IsValidFloor(floor))
            throw new UsageException($"--min-release must be 0-{Releases.MaxRelease}, got {floor}");
        string? name = result.GetValue(machineClass);
        if (name is not null && !Releases.IsValidMachineClass(name))
            throw new UsageException($"--machine-class must be 1-{Releases.MaxMachineClassLength} characters of a-z, 0-9 and -, got \"{name}\"");
        string urlText = result.GetValue(ticketUrl) ?? throw new UsageException("--freshness needs --ticket-url https://CONTROLLER/boot/v1/ticket");
        if (!Uri.TryCreate(urlText, UriKind.Absolute, out var url) || !FreshnessPolicy.IsValidTicketUrl(url))
            throw new UsageException($"--ticket-url must be an absolute https URL without userinfo, query or fragment, got \"{urlText}\"");
        string keyPath = result.GetValue(ticketRoot) ?? throw new UsageException("--freshness needs --ticket-root (the controller's ticket key, PEM PUBLIC KEY)");
        byte[] key;
        try { key = Packaging.Crypto.Ed25519Keys.FromPublicKeyPem(CliRun.ReadFile(keyPath, Limits.MaxPemBytes, "--ticket-root")); }
        catch (PackageFormatException e) { throw new UsageException($"--ticket-root {keyPath}: {e.Message}"); }
        return (new FreshnessPolicy(mode, floor, name, url), key);
    }

    static IReadOnlyList<Certificate> ReadRoots(string path, string option)
    {
        IReadOnlyList<Certificate> certificates;
        try { certificates = Certificate.ParsePemBundle(CliRun.ReadFile(path, Limits.MaxPemBytes, option)); }
        catch (PackageFormatException e) { throw new UsageException($"{option} {path}: {e.Message}"); }
        return certificates.Count > 0 ? certificates : throw new UsageException($"{option} {path} holds no certificate");
    }
}
