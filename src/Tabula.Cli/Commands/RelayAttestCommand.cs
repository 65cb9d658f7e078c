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
using Tabula.Tls;

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
        var tlsRoots = new Option<string?>("--tls-roots")
        {
            Description = "Trust exactly these TLS roots (PEM) for the provisioning server's HTTPS (default: the roots the relay's stboot measured, else the system's)",
        };
        var requireSecureBoot = new Option<bool>("--require-secure-boot")
        {
            Description = "Fail (at measured-boot) unless stboot measured that the relay's firmware enforced Secure Boot",
        };
        var json = new Option<bool>("--json") { Description = "Print {verified, package_sha256, release, nonce, quote_sha256, platform, steps} as JSON" };
        var timeout = new Option<int>("--timeout") { Description = "Seconds to wait for the relay and the provisioning server", DefaultValueFactory = _ => 30 };
        var device = new Option<string?>("--interface")
        {
            Description = "Ask the relay through this network interface (SO_BINDTODEVICE; e.g. one of several WireGuard tunnels that all " +
                          "reach their relay's gateway at the same address). The descriptor is fetched as routed",
        };
        var command = new Command("attest", "Verify, from inside the tunnel, which signed OS this relay runs and that its WireGuard key lives in that boot.")
        {
            gateway, relayKey, signingRoot, tpmRoots, threshold, descriptorUrl, tlsRoots, requireSecureBoot, json, timeout, device,
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
            PinnedTlsRoots? customerTls = result.GetValue(tlsRoots) is { } tlsPath ? PinnedTlsRoots.LoadPemFile(tlsPath, TimeProvider.System) : null;
            if (result.GetValue(device) is { } name && (name.Length is 0 or > 15 || name.Contains('/') || name.Contains('\0')))
                throw new UsageException($"--interface {name}: not a network interface name");
            var options = new AttestOptions(result.GetValue(descriptorUrl), customerTls, result.GetValue(requireSecureBoot)) { Interface = result.GetValue(device) };
            var outcome = await AttestAsync(endpoint, expectedKey, roots, policy, options, deadline.Token);
            Print(outcome, result.GetValue(json));
            return outcome.Report.Verified ? ExitCode.Ok : ExitCode.Rejected;
        }));
        return command;
    }

    /// <summary>The customer's choices beyond the roots: where the descriptor is (null: the measured host configuration's
    /// pointers), which TLS roots to trust for it (null: the measured ones, else the system's), and whether Secure Boot is required.</summary>
    internal sealed record AttestOptions(string? DescriptorUrl, PinnedTlsRoots? TlsRoots, bool RequireSecureBoot)
    {
        /// <summary>The network interface the connection to the relay is bound to (SO_BINDTODEVICE), or null: as routed.</summary>
        public string? Interface { get; init; }
    }

    /// <summary>What one run found: the report, the nonce it used, and the release the controller certified (from the AK certificate).</summary>
    internal sealed record Outcome(AttestationReport Report, byte[] Nonce, long? Release);

    static IPEndPoint ParseGateway(string text) =>
        IPEndPoint.TryParse(text, out var endpoint) && endpoint.Port != 0 ? endpoint
        : IPAddress.TryParse(text, out var address) ? new IPEndPoint(address, AttestationBinding.Port)
        : throw new UsageException($"--gateway {text}: not an IP address or IP:PORT");

    internal static async Task<Outcome> AttestAsync(IPEndPoint endpoint, byte[] expectedKey, X509Certificate2Collection roots, VerificationPolicy policy,
        AttestOptions options, CancellationToken ct)
    {
        using var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (options.Interface is { } device)
            socket.SetRawSocketOption(1 /* SOL_SOCKET */, 25 /* SO_BINDTODEVICE */, System.Text.Encoding.ASCII.GetBytes(device + "\0"));
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

        // The package step needs the network (the descriptor): fetched before the synchronous verifier runs, by the measured
        // digest from the provisioning URLs the relay's measured host configuration names, over TLS checked against the roots
        // stboot measured. The verifier trusts what the log says (the digest, the roots) only after it replayed to the quote;
        // CheckPackage then makes sure the fetch used what the verified log holds.
        MeasuredPackage? measured = PeekPackage(evidence.EventLog);
        var fetched = new List<Fetched>();
        TlsTrust? trust = null;
        if (measured is not null)
        {
            trust = TlsTrust.For(options.TlsRoots, measured.HttpsRoots);
            IReadOnlyList<string> pointers = options.DescriptorUrl is { } u ? [u] : PointersOf(measured.HostConfig);
            var digest = Sha256Digest.Parse(measured.ArchiveSha256, "the measured archive digest");
            foreach (string pointer in pointers)
                fetched.Add(await FetchByDigestAsync(pointer, digest, trust, ct));
        }

        var report = EvidenceVerifier.Verify(evidence, new VerifierExpectations(roots, DateTimeOffset.UtcNow, nonce, claimedKey, expectedKey,
            (ak, ek, answer) => CryptographicOperations.FixedTimeEquals(secret, answer)
                ? StepResult.Pass(AttestationStep.AkActivation, "the TPM holding the EK answered our challenge for this AK")
                : StepResult.Fail(AttestationStep.AkActivation, "the TPM did not answer our challenge: the AK is not in the EK's TPM"),
            package => CheckPackage(package, measured, trust, fetched, policy)) { RequireSecureBoot = options.RequireSecureBoot });
        return new Outcome(report, nonce, release);
    }

    /// <summary>One descriptor fetch: the URL it came from (null descriptor: why not), and whether it was the content-addressed one.</summary>
    internal sealed record Fetched(string Url, bool ByDigest, Descriptor? Descriptor, string? Error);

    static StepResult CheckPackage(MeasuredPackage package, MeasuredPackage? peeked, TlsTrust? trust, List<Fetched> fetched, VerificationPolicy policy)
    {
        // What was fetched was chosen from the log before it was trusted: it must be what the verified log says.
        if (peeked is null || peeked.ArchiveSha256 != package.ArchiveSha256
            || !(peeked.HttpsRoots ?? []).AsSpan().SequenceEqual(package.HttpsRoots ?? []))
            return StepResult.Fail(AttestationStep.Package, "the descriptor was fetched for another log than the one verified");
        if (fetched.Count == 0)
            return StepResult.Fail(AttestationStep.Package, "no descriptor URL: the measured host configuration names no http(s) provisioning URL (give --descriptor-url)");
        var errors = new List<string>();
        foreach (var (url, byDigest, descriptor, error) in fetched)
        {
            if (descriptor is null) { errors.Add($"{url}: {error}"); continue; }
            // The descriptor carries no digest of its own: its signatures are over the archive's. Verified over the measured
            // digest, it is this package's descriptor or it fails here, wherever it came from.
            var verdict = PackageVerifier.Verify(descriptor, Convert.FromHexString(package.ArchiveSha256), policy, DateTimeOffset.UtcNow);
            if (verdict.Accepted)
                return StepResult.Pass(AttestationStep.Package,
                    $"package {package.ArchiveSha256}: the descriptor from {url} ({(byDigest ? "by digest" : "the pointer")}, {trust!.Describe(url)}) "
                    + $"verifies over the measured digest under the signing root ({verdict.Summary})");
            errors.Add($"{url}: does not verify over the measured digest ({verdict.Summary})");
        }
        return StepResult.Fail(AttestationStep.Package, $"package {package.ArchiveSha256} is not signed under the signing root and threshold: {string.Join("; ", errors)}");
    }

    /// <summary>
    /// Fetches the descriptor of <paramref name="digest"/> for one pointer: the content-addressed <c>ospkg/DIGEST.json</c> beside
    /// it (Tabula.Packaging's <see cref="PackageUrlLayout"/>, what the provisioning server serves), and the pointer itself only
    /// when that is 404 (an older server, a mirror without it) or the pointer is not in that layout. Any other failure of the
    /// content-addressed URL (TLS, another status, a bad body) is the answer: a server that should have it does not get to
    /// send something else instead.
    /// </summary>
    static async Task<Fetched> FetchByDigestAsync(string pointer, Sha256Digest digest, TlsTrust trust, CancellationToken ct)
    {
        Uri? byDigest = Uri.TryCreate(pointer, UriKind.Absolute, out var uri) ? PackageUrlLayout.ContentAddressedDescriptor(uri, digest) : null;
        if (byDigest is not null)
        {
            var (descriptor, status, error) = await FetchDescriptorAsync(byDigest.AbsoluteUri, trust, ct);
            if (status != HttpStatusCode.NotFound)
                return new Fetched(byDigest.AbsoluteUri, true, descriptor, error);
        }
        var (fallback, _, why) = await FetchDescriptorAsync(pointer, trust, ct);
        return new Fetched(pointer, false, fallback, byDigest is null ? why : $"{why} (and {byDigest.AbsoluteUri} is 404)");
    }

    /// <summary>The package the log names, by the verifier's own rules (<see cref="StbootMeasurements.Read"/>: the last archive
    /// event), before the log is trusted: only to know what to fetch; the verifier decides on it after the replay.</summary>
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

    static async Task<(Descriptor?, HttpStatusCode?, string?)> FetchDescriptorAsync(string url, TlsTrust trust, CancellationToken ct)
    {
        // The signatures carry the trust in what is served; TLS is still checked (trust.Validate), so nobody on the path
        // sees or changes what the customer asks for without a certificate the roots vouch for.
        using var handler = new SocketsHttpHandler
        {
            UseProxy = false, UseCookies = false, AutomaticDecompression = DecompressionMethods.None,
            SslOptions = new System.Net.Security.SslClientAuthenticationOptions { RemoteCertificateValidationCallback = trust.Validate },
        };
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(20) };
        try
        {
            using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, ct);
            if (!response.IsSuccessStatusCode) return (null, response.StatusCode, $"HTTP {(int)response.StatusCode}");
            await using var body = await response.Content.ReadAsStreamAsync(ct);
            var buffer = new MemoryStream();
            var chunk = new byte[16 * 1024];
            int read;
            while ((read = await body.ReadAsync(chunk, ct)) > 0)
            {
                buffer.Write(chunk, 0, read);
                if (buffer.Length > Limits.MaxDescriptorBytes) return (null, response.StatusCode, "the descriptor is too large");
            }
            return (Descriptor.Parse(buffer.ToArray()), response.StatusCode, null);
        }
        catch (Exception e) when (e is HttpRequestException or PackageFormatException or IOException or TaskCanceledException)
        {
            string? refused = trust.TakeRefusal();
            return (null, null, refused is not null ? $"TLS refused: {refused}" : e.Message);
        }
    }

    /// <summary>
    /// Which TLS roots a descriptor fetch trusts: the customer's <c>--tls-roots</c> (exactly those), else the HTTPS roots the
    /// relay's stboot measured in PCR 13 (what it fetched its package under), else the system's. A handshake these do not
    /// vouch for is refused, and why is kept for the step's detail.
    /// </summary>
    sealed class TlsTrust
    {
        readonly PinnedTlsRoots? pinned;
        readonly string roots;
        readonly string? unusable;
        string? refusal;

        /// <param name="roots">Which roots, for the step's detail: "--tls-roots", "the 2 HTTPS root(s) stboot measured", ….</param>
        TlsTrust(PinnedTlsRoots? pinned, string roots, string? unusable = null) => (this.pinned, this.roots, this.unusable) = (pinned, roots, unusable);

        public static TlsTrust For(PinnedTlsRoots? customer, byte[]? measured)
        {
            if (customer is not null) return new(customer, "--tls-roots");
            if (measured is not { Length: > 0 }) return new(null, "the system's roots (stboot measured no HTTPS roots)");
            try
            {
                var roots = Certificate.ParseDerConcatenation(measured);
                return new(new PinnedTlsRoots(roots, TimeProvider.System), $"the {roots.Count} HTTPS root(s) stboot measured");
            }
            catch (PackageFormatException e)
            {
                return new(null, "no TLS roots", "the HTTPS roots stboot measured do not parse (" + e.Message + "); give --tls-roots PEM");
            }
        }

        public string Describe(string url) => !url.StartsWith("https://", StringComparison.OrdinalIgnoreCase) ? "plain HTTP"
            : unusable is not null ? roots : "TLS under " + roots;

        public bool Validate(object sender, X509Certificate? certificate, X509Chain? chain, System.Net.Security.SslPolicyErrors errors)
        {
            if (unusable is not null) return Refuse(unusable);
            if (pinned is not null)
                return pinned.Validate(certificate, chain, errors) || Refuse($"the server's certificate is not under {roots}: {pinned.LastRefusal}");
            return errors == System.Net.Security.SslPolicyErrors.None
                || Refuse($"the server's certificate does not verify under the system's roots ({errors}); give --tls-roots PEM");
        }

        bool Refuse(string why)
        {
            refusal = why;
            return false;
        }

        public string? TakeRefusal()
        {
            string? why = refusal;
            refusal = null;
            return why;
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
                report.QuoteSha256, [.. report.Steps.Select(s => new AttestStepOutput(s.Name, s.Ok, s.Detail))])
            {
                Platform = report.Platform is { } p
                    ? new AttestPlatformOutput(HandoverPlatform.Spell(p.Firmware), p.SecureBoot, p.Lockdown is { } l ? HandoverPlatform.Spell(l) : null)
                    : null,
                Pcrs = report.ReplayedPcrs?.ToDictionary(p => p.Key.ToString(System.Globalization.CultureInfo.InvariantCulture), p => Convert.ToHexStringLower(p.Value)),
            };
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
