using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Tabula.Fleet.Protocol;
using Tabula.Qemu;
using Tabula.Relay.Attest;
using Tabula.Testing.Packages;

namespace Tabula.Attestation.Tests;

/// <summary>
/// The customer's check (issue 19): the real `tabula relay attest` against the relay's attestation service
/// (<see cref="AttestationServer"/>) over TCP, the relay's TPM a real swtpm (tpm2-tools as its TPM stack), the package a
/// real signed one whose descriptor a provisioning server serves. Genuine evidence verifies in every step; each lie fails
/// at its step; one customer's flood is rate-limited without starving another.
/// </summary>
public sealed class RelayAttestTests : IAsyncLifetime
{
    readonly string dir = $"/var/tmp/tabula-relay-attest-{Environment.ProcessId}-{RandomNumberGenerator.GetHexString(8, lowercase: true)}";
    readonly List<IDisposable> owned = [];
    readonly List<IAsyncDisposable> servers = [];
    HttpListener? provisioning;
    string provisioningUrl = "";
    byte[] archive = [], descriptor = [];
    TestSigner root = null!;

    const string Tools = "swtpm";

    public Task InitializeAsync()
    {
        Directory.CreateDirectory(dir);
        root = SignedPackages.Root();
        archive = SignedPackages.Archive("kernel"u8.ToArray(), "initramfs"u8.ToArray(), "console=ttyS0", release: 7, machineClass: "relay");
        int port = FreePort();
        provisioningUrl = $"http://127.0.0.1:{port}/";
        descriptor = SignedPackages.Descriptor(archive, provisioningUrl + "ospkg.zip", SignedPackages.Leaf(root));
        provisioning = new HttpListener();
        provisioning.Prefixes.Add(provisioningUrl);
        provisioning.Start();
        _ = Task.Run(async () =>
        {
            while (provisioning.IsListening)
            {
                HttpListenerContext context;
                try { context = await provisioning.GetContextAsync(); }
                catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException) { return; }
                byte[] body = context.Request.Url!.AbsolutePath == "/ospkg.json" ? descriptor : [];
                context.Response.StatusCode = body.Length > 0 ? 200 : 404;
                await context.Response.OutputStream.WriteAsync(body);
                context.Response.Close();
            }
        });
        File.WriteAllText(Path.Combine(dir, "root.pem"), root.CertificatePem);
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        foreach (var s in servers) await s.DisposeAsync();
        foreach (var d in owned) d.Dispose();
        provisioning?.Close();
        if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
    }

    static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    /// <summary>The relay's TPM behind <see cref="IRelayTpm"/>.</summary>
    sealed class Adapter(ToolsRelayTpm tpm) : IRelayTpm
    {
        public byte[] EkCertificate => tpm.EkCertificate;
        public byte[] AkPublic => tpm.AkPublic;
        public byte[]? Activate(byte[] credentialBlob, byte[] encryptedSecret) => tpm.Activate(credentialBlob, encryptedSecret);
        public (byte[] Attest, byte[] Signature) Quote(byte[] qualifyingData) => tpm.Quote(qualifyingData);
        public byte[] EventLog() => tpm.EventLog();
    }

    /// <summary>The relay's TPM, but it refuses every challenge (as a TPM does one made for another EK or AK).</summary>
    sealed class RefusingAdapter(ToolsRelayTpm tpm) : IRelayTpm
    {
        public byte[] EkCertificate => tpm.EkCertificate;
        public byte[] AkPublic => tpm.AkPublic;
        public byte[]? Activate(byte[] credentialBlob, byte[] encryptedSecret) => null;
        public (byte[] Attest, byte[] Signature) Quote(byte[] qualifyingData) => tpm.Quote(qualifyingData);
        public byte[] EventLog() => tpm.EventLog();
    }

    /// <summary>A relay booted by stboot with the signed package, its WireGuard key measured; its service on 127.0.0.1.
    /// <paramref name="pointer"/> is the measured host configuration's ospkg_pointer; <paramref name="httpsRoots"/> and
    /// <paramref name="platform"/> are measured into PCR 13 when given.</summary>
    async Task<(IPEndPoint Service, byte[] Key, TpmManufacturer Ca, ToolsRelayTpm Tpm)> RelayAsync(byte[]? servedKey = null, string? pointer = null,
        byte[]? httpsRoots = null, string? platform = null)
    {
        var ca = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        var tpm = new ToolsRelayTpm(Path.Combine(dir, "relay-" + owned.Count), ca);
        owned.Add(tpm);
        byte[] key = RandomNumberGenerator.GetBytes(32);
        string hostConfig = $$"""{"version":1,"network_mode":"dhcp","ospkg_pointer":"{{pointer ?? provisioningUrl + "ospkg.json"}}"}""";
        tpm.MeasureStboot(SHA256.HashData(archive), descriptor, """{"version":1}"""u8.ToArray(), Encoding.UTF8.GetBytes(hostConfig));
        if (httpsRoots is not null) tpm.Measure(13, Tabula.Tpm.Measurements.StbootEvent.HttpsRoot, httpsRoots);
        if (platform is not null) tpm.Measure(13, Tabula.Tpm.Measurements.StbootEvent.PlatformSecurity, Encoding.UTF8.GetBytes(platform));
        tpm.Measure(14, Tabula.Tpm.Measurements.StbootEvent.WireGuardKey, servedKey ?? key);
        var server = AttestationServer.Start([new IPEndPoint(IPAddress.Loopback, 0)], new Adapter(tpm), () => servedKey ?? key, () => null);
        servers.Add(server);
        await Task.CompletedTask;
        return (server.Endpoints[0], key, ca, tpm);
    }

    /// <summary>Another attestation service on the same TPM and key: its own per-source budget (3 exchanges, then one per 2 s),
    /// so a test can run the CLI more often than the limit lets one customer.</summary>
    IPEndPoint Serve(ToolsRelayTpm tpm, byte[] key)
    {
        var server = AttestationServer.Start([new IPEndPoint(IPAddress.Loopback, 0)], new Adapter(tpm), () => key, () => null);
        servers.Add(server);
        return server.Endpoints[0];
    }

    static async Task<(int Exit, JsonElement Json, string Output)> AttestAsync(IPEndPoint service, byte[] key, string signingRoot, string tpmRoots,
        params string[] extra)
    {
        var run = await TabulaCli.RunAsync(["relay", "attest", "--gateway", service.ToString(), "--relay-key", Convert.ToBase64String(key),
            "--signing-root", signingRoot, "--tpm-roots", tpmRoots, "--json", .. extra], timeout: TimeSpan.FromSeconds(120));
        Assert.True(run.ExitCode is 0 or 1, run.ToString());
        return (run.ExitCode, JsonDocument.Parse(run.Stdout).RootElement.Clone(), run.ToString());
    }

    static void AssertFailedAt(string step, (int Exit, JsonElement Json, string Output) run)
    {
        Assert.True(run.Exit == 1, run.Output);
        Assert.False(run.Json.GetProperty("verified").GetBoolean());
        var steps = run.Json.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(step, steps[^1].GetProperty("name").GetString());
        Assert.False(steps[^1].GetProperty("ok").GetBoolean());
        Assert.All(steps.SkipLast(1), s => Assert.True(s.GetProperty("ok").GetBoolean(), run.Output));
    }

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public async Task Relay_attest_verifies_every_link_and_names_the_step_a_lie_fails_at()
    {
        // Each lie runs against its own service on the same TPM: one service allows a customer 3 exchanges, then one per
        // 2 s, and these runs can come faster than that.
        var (service, key, ca, tpm) = await RelayAsync();
        var genuine = await AttestAsync(service, key, Path.Combine(dir, "root.pem"), ca.CertificatePath);
        Assert.True(genuine.Exit == 0, genuine.Output);
        var json = genuine.Json;
        Assert.True(json.GetProperty("verified").GetBoolean());
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(archive)), json.GetProperty("package_sha256").GetString());
        Assert.Equal(64, json.GetProperty("nonce").GetString()!.Length);
        Assert.Equal(64, json.GetProperty("quote_sha256").GetString()!.Length);
        Assert.Equal(AttestationStep.All, json.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()!));

        // Another operator's signing root: the measured package is not theirs.
        File.WriteAllText(Path.Combine(dir, "other-root.pem"), SignedPackages.Root().CertificatePem);
        AssertFailedAt(AttestationStep.Package, await AttestAsync(Serve(tpm, key), key, Path.Combine(dir, "other-root.pem"), ca.CertificatePath));

        // An EK certificate from a CA the customer does not trust.
        var unknown = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "unknown-ca"), "Unknown TPM vendor");
        AssertFailedAt(AttestationStep.EkCertificate, await AttestAsync(Serve(tpm, key), key, Path.Combine(dir, "root.pem"), unknown.CertificatePath));

        // The customer talks to one key; the relay presents genuine evidence for another (measured and quoted for it).
        AssertFailedAt(AttestationStep.KeyBinding, await AttestAsync(Serve(tpm, key), RandomNumberGenerator.GetBytes(32), Path.Combine(dir, "root.pem"), ca.CertificatePath));

        // This stboot measured no platform: a customer requiring Secure Boot refuses it at measured-boot; --json has no platform.
        Assert.False(json.TryGetProperty("platform", out _));
        var strict = await AttestAsync(Serve(tpm, key), key, Path.Combine(dir, "root.pem"), ca.CertificatePath, "--require-secure-boot");
        AssertFailedAt(AttestationStep.MeasuredBoot, strict);
        Assert.Contains("Secure Boot is required", strict.Output);

        // A TPM that refuses the customer's challenge: the service sends an empty answer, and the customer's check names
        // ak-activation (not a malformed answer, exit 2).
        var refusing = AttestationServer.Start([new IPEndPoint(IPAddress.Loopback, 0)], new RefusingAdapter(tpm), () => key, () => null);
        servers.Add(refusing);
        AssertFailedAt(AttestationStep.AkActivation, await AttestAsync(refusing.Endpoints[0], key, Path.Combine(dir, "root.pem"), ca.CertificatePath));
    }

    /// <summary>The provisioning server over HTTPS as the customer reaches it: the channel pointer and the content-addressed
    /// descriptors, under a certificate that can be swapped.</summary>
    sealed class HttpsProvisioning : IDisposable
    {
        readonly TcpListener listener = new(IPAddress.Loopback, 0);
        readonly CancellationTokenSource stop = new();
        public X509Certificate2 Certificate { get; set; } = null!;
        public byte[] Channel { get; set; } = [];
        public Dictionary<string, byte[]> ByDigest { get; } = [];
        public List<string> Requests { get; } = [];
        public int Port => ((IPEndPoint)listener.LocalEndpoint).Port;

        public HttpsProvisioning()
        {
            listener.Start();
            _ = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    TcpClient client;
                    try { client = await listener.AcceptTcpClientAsync(stop.Token); }
                    catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
                    _ = Task.Run(() => ServeAsync(client));
                }
            });
        }

        async Task ServeAsync(TcpClient client)
        {
            using (client)
            {
                try
                {
                    using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                    timeout.CancelAfter(TimeSpan.FromSeconds(20));
                    await using var tls = new System.Net.Security.SslStream(client.GetStream());
                    await tls.AuthenticateAsServerAsync(new System.Net.Security.SslServerAuthenticationOptions { ServerCertificate = Certificate }, timeout.Token);
                    var buffer = new byte[8192];
                    int n = await tls.ReadAsync(buffer, timeout.Token);
                    string path = Encoding.ASCII.GetString(buffer, 0, n).Split(' ')[1];
                    lock (Requests) Requests.Add(path);
                    byte[]? body = path == "/channels/stable.json" ? Channel
                        : path.StartsWith("/ospkg/", StringComparison.Ordinal) && ByDigest.TryGetValue(path["/ospkg/".Length..], out var d) ? d : null;
                    await tls.WriteAsync(Encoding.ASCII.GetBytes(
                        $"HTTP/1.1 {(body is null ? "404 Not Found" : "200 OK")}\r\nContent-Length: {body?.Length ?? 0}\r\nConnection: close\r\n\r\n"), timeout.Token);
                    await tls.WriteAsync(body ?? [], timeout.Token);
                }
                catch (Exception e) when (e is IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException or IndexOutOfRangeException) { }
            }
        }

        public void Dispose()
        {
            stop.Cancel();
            listener.Stop();
        }
    }

    static X509Certificate2 ServerCertificate(Tabula.Tls.DevTlsFiles files) =>
        X509CertificateLoader.LoadPkcs12(X509Certificate2.CreateFromPemFile(files.ServerCertificate, files.ServerKey).Export(X509ContentType.Pkcs12), null);

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public async Task Relay_attest_fetches_the_descriptor_by_the_measured_digest_over_tls_checked_against_the_measured_roots()
    {
        var now = DateTimeOffset.UtcNow;
        var provisioningTls = Tabula.Tls.DevCertificateAuthority.Init(Path.Combine(dir, "tls"), ["127.0.0.1"], now, TimeSpan.FromDays(2), TimeSpan.FromDays(1));
        var rogueTls = Tabula.Tls.DevCertificateAuthority.Init(Path.Combine(dir, "rogue-tls"), ["127.0.0.1"], now, TimeSpan.FromDays(2), TimeSpan.FromDays(1),
            caName: "Rogue CA");
        using var https = new HttpsProvisioning { Certificate = ServerCertificate(provisioningTls) };
        string hex = Convert.ToHexStringLower(SHA256.HashData(archive));
        // Since this relay booted, its channel moved on to another release: the pointer now names another package.
        byte[] newer = SignedPackages.Archive("kernel 2"u8.ToArray(), "initramfs 2"u8.ToArray(), "console=ttyS0", release: 8, machineClass: "relay");
        https.Channel = SignedPackages.Descriptor(newer, $"https://127.0.0.1:{https.Port}/ospkg/x.zip", SignedPackages.Leaf(root));
        https.ByDigest[hex + ".json"] = descriptor;
        byte[] caDer = X509Certificate2.CreateFromPem(File.ReadAllText(provisioningTls.CaCertificate)).RawData;
        var (_, key, ca, tpm) = await RelayAsync(pointer: $"https://127.0.0.1:{https.Port}/channels/stable.json", httpsRoots: caDer,
            platform: """{"firmware":"uefi","secure_boot":true,"lockdown":"integrity"}""");
        string signing = Path.Combine(dir, "root.pem");

        // By digest, over TLS under the root stboot measured; the platform shown, Secure Boot required and present.
        var run = await AttestAsync(Serve(tpm, key), key, signing, ca.CertificatePath, "--require-secure-boot");
        Assert.True(run.Exit == 0, run.Output);
        Assert.Contains($"/ospkg/{hex}.json", run.Output);
        Assert.Contains("by digest", run.Output);
        Assert.Contains("HTTPS root(s) stboot measured", run.Output);
        Assert.DoesNotContain("/channels/stable.json", https.Requests);
        var platform = run.Json.GetProperty("platform");
        Assert.Equal("uefi", platform.GetProperty("firmware").GetString());
        Assert.True(platform.GetProperty("secure_boot").GetBoolean());
        Assert.Equal("integrity", platform.GetProperty("lockdown").GetString());

        // A server without the content-addressed path (404): the pointer, which must still verify over the measured digest.
        https.ByDigest.Clear();
        AssertFailedAt(AttestationStep.Package, await AttestAsync(Serve(tpm, key), key, signing, ca.CertificatePath));
        https.Channel = descriptor;
        var fallback = await AttestAsync(Serve(tpm, key), key, signing, ca.CertificatePath);
        Assert.True(fallback.Exit == 0, fallback.Output);
        Assert.Contains("the pointer", fallback.Output);

        // A certificate the measured roots do not vouch for is refused, however good the descriptor; the customer may name
        // the roots it trusts instead.
        https.ByDigest[hex + ".json"] = descriptor;
        https.Certificate = ServerCertificate(rogueTls);
        var rogue = await AttestAsync(Serve(tpm, key), key, signing, ca.CertificatePath);
        AssertFailedAt(AttestationStep.Package, rogue);
        Assert.Contains("TLS refused", rogue.Output);
        var customer = await AttestAsync(Serve(tpm, key), key, signing, ca.CertificatePath, "--tls-roots", rogueTls.CaCertificate);
        Assert.True(customer.Exit == 0, customer.Output);
        Assert.Contains("--tls-roots", customer.Output);
    }

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public async Task A_thousand_requests_from_one_customer_are_rate_limited_and_another_customer_is_still_answered()
    {
        var (service, key, ca, _) = await RelayAsync();
        // 1000 connections from 127.0.0.1: a burst is answered, the rest refused at once with one error line.
        var clock = Stopwatch.StartNew();
        int limited = 0, keys = 0, other = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, 1000), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (_, ct) =>
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            try { await socket.ConnectAsync(service, ct); }
            catch (SocketException) { Interlocked.Increment(ref other); return; }
            var buffer = new byte[8192];
            int read;
            try { read = await socket.ReceiveAsync(buffer, ct); }
            catch (SocketException) { Interlocked.Increment(ref other); return; }
            string line = Encoding.UTF8.GetString(buffer, 0, read);
            if (line.Contains("rate_limited", StringComparison.Ordinal)) Interlocked.Increment(ref limited);
            else if (line.Contains("ek_certificate", StringComparison.Ordinal)) Interlocked.Increment(ref keys);
            else Interlocked.Increment(ref other);
        });
        clock.Stop();
        Assert.True(keys <= AttestationServer.Limits.Burst + 2, $"{keys} of 1000 got keys");
        Assert.True(limited >= 990, $"rate_limited {limited}, keys {keys}, other {other}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"1000 refusals took {clock.Elapsed}");

        // Meanwhile another customer (another tunnel address: 127.0.0.2) is answered and verifies.
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        socket.Bind(new IPEndPoint(IPAddress.Parse("127.0.0.2"), 0));
        await socket.ConnectAsync(service);
        var first = new byte[8192];
        int n = await socket.ReceiveAsync(first);
        Assert.Contains("ek_certificate", Encoding.UTF8.GetString(first, 0, n));
        _ = key;
        _ = ca;
    }
}
