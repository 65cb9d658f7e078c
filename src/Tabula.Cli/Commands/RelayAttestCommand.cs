using System.CommandLine;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using Tabula.Attestation;
using Tabula.Tpm;
using Tabula.Tpm.Measurements;
using Tabula.Fleet.Protocol;
using Tabula.Packaging;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula relay attest` (issue 19, docs/attestation.md): a customer checks, from inside the tunnel, that the relay holding
/// its traffic booted a package signed by the operator's signers and that the WireGuard key it talks to lives in that
/// boot. It asks the relay's attestation service on the gateway address for fresh evidence bound to its own nonce and
/// answered to its own credential-activation challenge, and verifies every link itself (<see cref="EvidenceVerifier"/>):
/// EK → manufacturer root, AK → EK, quote and nonce, PCRs → log, stboot's measurements, the log's package digest → a
/// descriptor fetched from the provisioning server and verified under the signing root and threshold, and the key binding.
/// Exit 0 only when every step passes; 1 when one fails; 2 when the relay could not be asked or the input is unusable.
/// </summary>
internal static class RelayAttestCommand
{
    public static Command Create()
    {
        var gateway = new Option<string>("--gateway") { Description = "The relay's gateway address inside the tunnel (IP, or IP:PORT; default port 8019)", Required = true };
        var relayKey = new Option<string>("--relay-key") { Description = "The relay's WireGuard public key (base64), as in your WireGuard configuration", Required = true };
        var signingRoot = new Option<string>("--signing-root") { Description = "The OS package signing root(s) (PEM), e.g. `lab up --json`'s signing_root", Required = true };
        var tpmRoots = new Option<string>("--tpm-roots") { Description = "TPM manufacturer root(s) (PEM) the relay's EK certificate must chain to", Required = true };
        var threshold = new Option<int>("--threshold") { Description = "Signatures the package's descriptor needs under the signing root", DefaultValueFactory = _ => 1 };
        var descriptorUrl = new Option<string?>("--descriptor-url")
        {
            Description = "Fetch the descriptor here instead of the provisioning URLs in the relay's measured host configuration",
        };
        var json = new Option<bool>("--json") { Description = "Print {verified, package_sha256, release, nonce, quote_sha256, steps} as JSON" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the relay and the provisioning server", DefaultValueFactory = _ => 30 };
        var command = new Command("attest", "Verify, from inside the tunnel, which signed OS this relay runs and that its WireGuard key lives in that boot.")
        {
            gateway, relayKey, signingRoot, tpmRoots, threshold, descriptorUrl, json, timeout,
        };
        command.SetAction((result, ct) => CliRun.GuardAsync(async () =>
        {
            var endpoint = ParseGateway(result.GetValue(gateway)!);
            byte[] expectedKey = WireGuardPublicKey.TryParse(result.GetValue(relayKey), out var parsed) ? parsed.ToArray()
                : throw new UsageException("--relay-key is a WireGuard public key: 44 characters of base64");
            var roots = EkCertificateCheck.ReadRoots(await File.ReadAllTextAsync(result.GetValue(tpmRoots)!, ct));
            var signingRoots = Certificate.ParsePemBundle(await File.ReadAllBytesAsync(result.GetValue(signingRoot)!, ct));
            var policy = new VerificationPolicy(signingRoots, result.GetValue(threshold));
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(ct);
            deadline.CancelAfter(TimeSpan.FromSeconds(Math.Max(1, result.GetValue(timeout))));
            var outcome = await AttestAsync(endpoint, expectedKey, roots, policy, result.GetValue(descriptorUrl), deadline.Token);
            Print(outcome, result.GetValue(json));
            return outcome.Report.Verified ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    /// <summary>What one run found: the report, the nonce it used, and the release the controller certified (from the AK certificate).</summary>
    internal sealed record Outcome(AttestationReport Report, byte[] Nonce, long? Release);

    static IPEndPoint ParseGateway(string text) =>
        IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port != 0 ? endpoint
        : IPAddress.TryParse(text, out var address) ? new IPEndPoint(address, AttestationBinding.Port)
        : throw new UsageException($"--gateway {text}: not an IP address or IP:PORT");

    internal static async Task<Outcome> AttestAsync(IPEndPoint endpoint, byte[] expectedKey, X509Certificate2Collection roots, VerificationPolicy policy,
        string? descriptorUrl, CancellationToken ct)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(endpoint, ct);
        await using var stream = new NetworkStream(socket, ownsSocket: false);
        var reader = new LineReader(stream);
        byte[] first = await reader.ReadLineAsync(64 * 1024, ct);
        var keys = JsonSerializer.Deserialize(first, AttestationWireJson.Default.AttestationKeys);
        if (keys?.AkPublic is null || keys.EkCertificate is null)
            throw new InvalidOperationException("the relay refused: " + (JsonSerializer.Deserialize(first, AttestationWireJson.Default.ErrorBody)?.Message ?? "no keys"));

        // Our own challenge: only the TPM holding this EK can answer it, and only for an object named like this AK.
        byte[] secret = RandomNumberGenerator.GetBytes(AttestationKey.SecretBytes), nonce = RandomNumberGenerator.GetBytes(32);
        CredentialChallenge challenge;
        try
        {
            var ak = AttestationKey.ParseAk(Convert.FromBase64String(keys.AkPublic));
            using var ek = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(keys.EkCertificate));
            var (blob, encrypted) = AttestationKey.Challenge(ek, ak.Name, secret);
            challenge = new CredentialChallenge(Convert.ToBase64String(blob), Convert.ToBase64String(encrypted));
        }
        catch (Exception e) when (e is TpmFormatException or CryptographicException or FormatException)
        {
            // Nothing to challenge: the EK step would fail anyway; report it as the verifier would.
            var step = StepResult.Fail(AttestationStep.EkCertificate, "the relay's keys do not parse: " + e.Message);
            return new Outcome(new AttestationReport([step], null, null, ""), nonce, null);
        }
        byte[] request = JsonSerializer.SerializeToUtf8Bytes(new AttestQuoteRequest(Convert.ToHexStringLower(nonce), challenge), AttestationWireJson.Default.AttestQuoteRequest);
        await stream.WriteAsync(request, ct);
        await stream.WriteAsync("\n"u8.ToArray(), ct);
        byte[] second = await reader.ReadLineAsync(4 * 1024 * 1024, ct);
        var response = JsonSerializer.Deserialize(second, AttestationWireJson.Default.AttestQuoteResponse);
        if (response?.Evidence is null)
            throw new InvalidOperationException("the relay refused: " + (JsonSerializer.Deserialize(second, AttestationWireJson.Default.ErrorBody)?.Message ?? "no evidence"));
        var evidence = Evidence.Decode(response.Evidence, out string? why) ?? throw new InvalidOperationException("the relay's evidence is malformed: " + why);
        byte[] claimedKey = WireGuardPublicKey.TryParse(response.WireguardPublicKey, out var claimed) ? claimed.ToArray()
            : throw new InvalidOperationException("the relay sent no WireGuard public key");
        long? release = ReleaseOf(response.AkCertificate);

        // The package step needs the network (the descriptor): fetched before the synchronous verifier runs, from the URLs the
        // relay's measured host configuration names. The verifier only trusts them after the log replayed to the quote.
        var fetched = new Dictionary<string, (Descriptor? Descriptor, string? Error)>(StringComparer.Ordinal);
        MeasuredPackage? measured = PeekPackage(evidence.EventLog);
        IReadOnlyList<string> urls = descriptorUrl is { } u ? [u] : measured is null ? [] : PointersOf(measured.HostConfig);
        foreach (string url in urls)
            fetched[url] = await FetchDescriptorAsync(url, ct);

        var report = EvidenceVerifier.Verify(evidence, new VerifierExpectations(roots, DateTimeOffset.UtcNow, nonce, claimedKey, expectedKey,
            (ak, ek, answer) => CryptographicOperations.FixedTimeEquals(secret, answer)
                ? StepResult.Pass(AttestationStep.AkActivation, "the TPM holding the EK answered our challenge for this AK")
                : StepResult.Fail(AttestationStep.AkActivation, "the TPM did not answer our challenge: the AK is not in the EK's TPM"),
            package => CheckPackage(package, fetched, policy)));
        return new Outcome(report, nonce, release);
    }

    static StepResult CheckPackage(MeasuredPackage package, Dictionary<string, (Descriptor? Descriptor, string? Error)> fetched, VerificationPolicy policy)
    {
        if (fetched.Count == 0)
            return StepResult.Fail(AttestationStep.Package, "no descriptor URL: the measured host configuration names no provisioning URL (give --descriptor-url)");
        var errors = new List<string>();
        foreach (var (url, (descriptor, error)) in fetched)
        {
            if (descriptor is null) { errors.Add($"{url}: {error}"); continue; }
            var verdict = PackageVerifier.Verify(descriptor, Convert.FromHexString(package.ArchiveSha256), policy, DateTimeOffset.UtcNow);
            if (verdict.Accepted)
                return StepResult.Pass(AttestationStep.Package, $"package {package.ArchiveSha256}: descriptor from {url} verifies under the signing root ({verdict.Summary})");
            errors.Add($"{url}: {verdict.Summary}");
        }
        return StepResult.Fail(AttestationStep.Package, $"package {package.ArchiveSha256} is not signed under the signing root and threshold: {string.Join("; ", errors)}");
    }

    /// <summary>The package the log names, by the verifier's own rules (the last archive event), before the log is trusted:
    /// only to know what to fetch; the verifier decides on it after the replay.</summary>
    static MeasuredPackage? PeekPackage(byte[] log)
    {
        try { return StbootMeasurements.Read(EventLog.Parse(log), out _)?.Package; }
        catch (EventLogException) { return null; }
    }

    static IReadOnlyList<string> PointersOf(byte[]? hostConfig)
    {
        if (hostConfig is null) return [];
        try { return [.. HostConfig.Parse(hostConfig).OsPackagePointers.Where(p => p.StartsWith("http://", StringComparison.Ordinal) || p.StartsWith("https://", StringComparison.Ordinal)).Take(4)]; }
        catch (PackageFormatException) { return []; }
    }

    static async Task<(Descriptor?, string?)> FetchDescriptorAsync(string url, CancellationToken ct)
    {
        // The provisioning server decides nothing: what it serves is only accepted if its signatures verify over the measured
        // digest, so the transport need not be trusted (docs/security.md).
        using var handler = new SocketsHttpHandler
        {
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions { RemoteCertificateValidationCallback = (_, _, _, _) => true },
        };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode) return (null, $"HTTP {(int)response.StatusCode}");
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new MemoryStream();
            await body.CopyToAsync(buffer, ct);
            if (buffer.Length > Limits.MaxDescriptorBytes) return (null, "the descriptor is too large");
            return (Descriptor.Parse(buffer.ToArray()), null);
        }
        catch (Exception e) when (e is HttpRequestException or PackageFormatException or IOException or TaskCanceledException)
        {
            return (null, e.Message);
        }
    }

    static long? ReleaseOf(string? akCertificate)
    {
        if (akCertificate is null) return null;
        try
        {
            using var certificate = X509CertificateLoader.LoadCertificate(Convert.FromBase64String(akCertificate));
            if (certificate.Extensions["2.5.29.17"] is not { } names) return null;
            // GeneralNames: a URI is [6] IA5String (RFC 5280, 4.2.1.6).
            var uri = new System.Formats.Asn1.Asn1Tag(System.Formats.Asn1.TagClass.ContextSpecific, 6);
            var reader = new System.Formats.Asn1.AsnReader(names.RawData, System.Formats.Asn1.AsnEncodingRules.DER).ReadSequence();
            while (reader.HasData)
            {
                if (!reader.PeekTag().HasSameClassAndValue(uri)) { reader.ReadEncodedValue(); continue; }
                string name = reader.ReadCharacterString(System.Formats.Asn1.UniversalTagNumber.IA5String, uri);
                if (name.StartsWith("urn:tabula:release:", StringComparison.Ordinal) && long.TryParse(name["urn:tabula:release:".Length..], out long release))
                    return release;
            }
        }
        catch (Exception e) when (e is CryptographicException or FormatException or System.Formats.Asn1.AsnContentException) { }
        return null;
    }

    static void Print(Outcome outcome, bool json)
    {
        var report = outcome.Report;
        if (json)
        {
            var output = new AttestOutput(report.Verified, report.Package?.ArchiveSha256, outcome.Release, Convert.ToHexStringLower(outcome.Nonce),
                report.QuoteSha256, [.. report.Steps.Select(s => new AttestStepOutput(s.Name, s.Ok, s.Detail))]);
            Console.WriteLine(JsonSerializer.Serialize(output, CliJsonContext.Default.AttestOutput));
            return;
        }
        foreach (var step in report.Steps) Console.WriteLine($"{(step.Ok ? "ok  " : "FAIL")} {step.Name}: {step.Detail}");
        foreach (string name in AttestationStep.All.Skip(report.Steps.Count)) Console.WriteLine($"-    {name}: not checked");
        Console.WriteLine(report.Verified
            ? $"verified: package {report.Package!.ArchiveSha256}" + (outcome.Release is { } r ? $", release {r}" : "")
            : $"NOT verified: failed at {report.Failed?.Name}");
    }

    /// <summary>Reads newline-terminated lines, each at most a given size.</summary>
    sealed class LineReader(Stream stream)
    {
        readonly MemoryStream pending = new();

        public async Task<byte[]> ReadLineAsync(int max, CancellationToken ct)
        {
            var buffer = new byte[16 * 1024];
            while (true)
            {
                byte[] have = pending.ToArray();
                int newline = Array.IndexOf(have, (byte)'\n');
                if (newline >= 0)
                {
                    pending.SetLength(0);
                    pending.Write(have, newline + 1, have.Length - newline - 1);
                    return have[..newline];
                }
                if (have.Length > max) throw new InvalidOperationException($"the relay sent a line over {max} bytes");
                int read = await stream.ReadAsync(buffer, ct);
                if (read == 0) throw new IOException("the relay closed the connection");
                pending.Write(buffer, 0, read);
            }
        }
    }
}

/// <summary>`tabula relay`: what a customer runs about a relay.</summary>
internal static class RelayCommand
{
    public static Command Create() => new("relay", "Check a relay from inside its tunnel.") { RelayAttestCommand.Create() };
}
