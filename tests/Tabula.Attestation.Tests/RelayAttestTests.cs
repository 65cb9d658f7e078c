using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
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

    /// <summary>A relay booted by stboot with the signed package, its WireGuard key measured; its service on 127.0.0.1.</summary>
    async Task<(IPEndPoint Service, byte[] Key, TpmManufacturer Ca)> RelayAsync(byte[]? servedKey = null)
    {
        var ca = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
        var tpm = new ToolsRelayTpm(Path.Combine(dir, "relay-" + owned.Count), ca);
        owned.Add(tpm);
        byte[] key = RandomNumberGenerator.GetBytes(32);
        string hostConfig = $$"""{"version":1,"network_mode":"dhcp","ospkg_pointer":"{{provisioningUrl}}ospkg.json"}""";
        tpm.MeasureStboot(SHA256.HashData(archive), descriptor, """{"version":1}"""u8.ToArray(), Encoding.UTF8.GetBytes(hostConfig));
        tpm.Measure(14, Tabula.Tpm.Measurements.StbootEvent.WireGuardKey, servedKey ?? key);
        var server = AttestationServer.Start([new IPEndPoint(IPAddress.Loopback, 0)], new Adapter(tpm), () => servedKey ?? key, () => null);
        servers.Add(server);
        await Task.CompletedTask;
        return (server.Endpoints[0], key, ca);
    }

    static async Task<(int Exit, JsonElement Json, string Output)> AttestAsync(IPEndPoint service, byte[] key, string signingRoot, string tpmRoots)
    {
        var run = await TabulaCli.RunAsync(["relay", "attest", "--gateway", service.ToString(), "--relay-key", Convert.ToBase64String(key),
            "--signing-root", signingRoot, "--tpm-roots", tpmRoots, "--json"], timeout: TimeSpan.FromSeconds(120));
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
        var (service, key, ca) = await RelayAsync();
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
        AssertFailedAt(AttestationStep.Package, await AttestAsync(service, key, Path.Combine(dir, "other-root.pem"), ca.CertificatePath));

        // An EK certificate from a CA the customer does not trust.
        var unknown = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "unknown-ca"), "Unknown TPM vendor");
        AssertFailedAt(AttestationStep.EkCertificate, await AttestAsync(service, key, Path.Combine(dir, "root.pem"), unknown.CertificatePath));

        // The customer talks to one key; the relay presents genuine evidence for another (measured and quoted for it).
        AssertFailedAt(AttestationStep.KeyBinding, await AttestAsync(service, RandomNumberGenerator.GetBytes(32), Path.Combine(dir, "root.pem"), ca.CertificatePath));
    }

    [ToolsFact(Tools, "swtpm_setup", "swtpm_localca", "tpm2_quote", "tpm2_createak", "tpm2_activatecredential")]
    public async Task A_thousand_requests_from_one_customer_are_rate_limited_and_another_customer_is_still_answered()
    {
        var (service, key, ca) = await RelayAsync();
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
