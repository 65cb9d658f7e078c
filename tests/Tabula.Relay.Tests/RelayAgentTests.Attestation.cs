using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Tabula.Fleet;
using Tabula.Fleet.Api;
using Tabula.Qemu;
using Tabula.Relay.Attest;
using Tabula.Relay.Tests.Support;
using Tabula.Testing.Packages;
using Tabula.Tpm.Measurements;
using EventLog = Tabula.Tpm.Measurements.EventLog;

namespace Tabula.Relay.Tests;

// The attestation tests use the shared PostgreSQL cluster: the whole class joins its collection (run one after the other
// with the other classes that use it, so the last one done stops it).
[Collection(PostgresCollection.Name)]
public sealed partial class RelayAgentTests
{
    /// <summary>
    /// A relay booted by stboot onto a real signed package, with a real TPM (swtpm manufactured by a lab CA): stboot's
    /// measurements (PCR 12: archive, descriptor; 13: trust policy; 14: host configuration) extended into it and logged as
    /// stboot does, and a controller that requires attestation with that CA as its TPM roots and allows the package.
    /// </summary>
    sealed class AttestingRelay : IDisposable
    {
        readonly string dir = Directory.CreateTempSubdirectory("tabula-relay-attest-").FullName;
        readonly int descriptorPort = 20000 + Environment.ProcessId % 20000;
        Socket? descriptorServer;
        readonly CancellationTokenSource stop = new();

        public string? Database { get; }
        public TpmManufacturer Manufacturer { get; }
        public Swtpm Swtpm { get; }
        public TestSigner Root { get; } = SignedPackages.Root();
        public byte[] Archive { get; }
        public byte[] Descriptor { get; }
        public string PackageDigest { get; }
        public EventLog StbootLog { get; }
        public string RootPem => Path.Combine(dir, "root.pem");
        /// <summary>When set, the TPM measures this key instead of the agent's (evidence for another WireGuard key).</summary>
        public byte[]? MeasuredKey { get; init; }
        /// <summary>How long the agent's TPM work (<see cref="RelayTpm.Open"/>) took.</summary>
        public TimeSpan TpmOpen { get; private set; }

        public AttestingRelay(string? database)
        {
            Database = database;
            Manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(dir, "ca"));
            Swtpm.Manufacture(Path.Combine(dir, "state"), Manufacturer);
            Swtpm = Swtpm.StartServer(Path.Combine(dir, "state"), Path.Combine(dir, "swtpm.log"));
            File.WriteAllText(RootPem, Root.CertificatePem);
            string descriptorUrl = $"http://127.0.0.1:{descriptorPort}/ospkg.json";
            Archive = SignedPackages.Archive("kernel"u8.ToArray(), "initramfs"u8.ToArray(), "console=ttyS0", release: 7, machineClass: "relay");
            Descriptor = SignedPackages.Descriptor(Archive, $"http://127.0.0.1:{descriptorPort}/ospkg.zip", SignedPackages.Leaf(Root));
            PackageDigest = Convert.ToHexStringLower(SHA256.HashData(Archive));

            // What stboot's measure state extends and logs for this package (the customer finds the descriptor through the
            // measured host configuration's ospkg_pointer).
            byte[] hostConfig = Encoding.UTF8.GetBytes($$"""{"version":1,"network_mode":"dhcp","ospkg_pointer":"{{descriptorUrl}}"}""");
            MeasuredEvent[] events =
            [
                new(StbootPcr.Detail, StbootEvent.OspkgArchive, SHA256.HashData(Archive), "ospkg.zip"u8),
                MeasuredEvent.OfData(StbootPcr.Detail, StbootEvent.OspkgManifest, Descriptor),
                MeasuredEvent.OfData(StbootPcr.Authority, StbootEvent.SecurityConfig, """{"version":1,"ospkg_signature_threshold":1}"""u8),
                MeasuredEvent.OfData(StbootPcr.Identity, StbootEvent.HostConfig, hostConfig),
            ];
            using (var tpm = Swtpm.Open())
                foreach (var e in events)
                    tpm.PcrExtendSha256(e.Pcr, e.Sha256);
            StbootLog = EventLog.Of(events);
        }

        /// <summary>The provisioning server as the customer reaches it: plain HTTP in the client namespace, the descriptor only.</summary>
        public void ServeDescriptor(NetworkNamespace clientNs)
        {
            descriptorServer = clientNs.RunInside(() =>
            {
                var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                s.Bind(new IPEndPoint(IPAddress.Loopback, descriptorPort));
                s.Listen(8);
                return s;
            });
            _ = ServeDescriptorAsync();
        }

        async Task ServeDescriptorAsync()
        {
            while (!stop.IsCancellationRequested)
            {
                Socket accepted;
                try { accepted = await descriptorServer!.AcceptAsync(stop.Token); }
                catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException) { return; }
                using (accepted)
                {
                    try
                    {
                        var buffer = new byte[4096];
                        int n = await accepted.ReceiveAsync(buffer, SocketFlags.None, stop.Token);
                        bool wanted = Encoding.ASCII.GetString(buffer, 0, n).StartsWith("GET /ospkg.json ", StringComparison.Ordinal);
                        byte[] body = wanted ? Descriptor : [];
                        await accepted.SendAsync(Encoding.ASCII.GetBytes(
                            $"HTTP/1.1 {(wanted ? "200 OK" : "404 Not Found")}\r\nContent-Type: application/json\r\nContent-Length: {body.Length}\r\nConnection: close\r\n\r\n"), SocketFlags.None, stop.Token);
                        await accepted.SendAsync(body, SocketFlags.None, stop.Token);
                    }
                    catch (Exception e) when (e is OperationCanceledException or SocketException) { }
                }
            }
        }

        /// <summary><c>--attestation required</c>, the lab CA as <c>--tpm-roots</c>, the attestation CA in the test folder.</summary>
        public Func<FleetOptions, FleetOptions> Controller => o => o with
        {
            Attestation = AttestationPolicy.Required, TpmRootsPath = Manufacturer.CertificatePath, AttestationCaPath = Path.Combine(dir, "attestation-ca.pem"),
        };

        /// <summary>The agent's TPM: Tabula.Tpm's commands on this swtpm, stboot's log; the service's sockets in the relay namespace.</summary>
        public RelayAttestationOptions Options(NetworkNamespace relayNs) => new(RelayAttestationMode.Required, key =>
        {
            var clock = Stopwatch.StartNew();
            var tpm = RelayTpm.Open(Swtpm.Open(), StbootLog, MeasuredKey ?? key);
            TpmOpen = clock.Elapsed;
            return tpm;
        })
        {
            Sockets = family => relayNs.RunInside(() => new Socket(family, SocketType.Stream, ProtocolType.Tcp)),
            Retry = TimeSpan.FromSeconds(1),
        };

        /// <summary>Staff allow the package (the controller's package step).</summary>
        public async Task AllowAsync(FleetOverHttps fleet)
        {
            using var staff = fleet.Client(fleet.AdminToken);
            using var allowed = await staff.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(PackageDigest, "release 7"), FleetJson.Default.AllowPackageRequest);
            Assert.Equal(HttpStatusCode.NoContent, allowed.StatusCode);
        }

        public void Dispose()
        {
            stop.Cancel();
            descriptorServer?.Dispose();
            Swtpm.Dispose();
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>The real `tabula relay attest`, run in the client namespace (so through the tunnel to the gateway address).</summary>
    static async Task<(ProcessOutput Run, JsonElement Json, TimeSpan Took)> RelayAttestAsync(Rig rig, AttestingRelay relay, byte[] relayKey)
    {
        var cli = TabulaCli.StartInfo(["relay", "attest", "--gateway", "10.64.0.1", "--relay-key", Convert.ToBase64String(relayKey),
            "--signing-root", relay.RootPem, "--tpm-roots", relay.Manufacturer.CertificatePath, "--json", "--timeout", "60"]);
        var inside = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])["netns", "exec", rig.ClientNs.Name, cli.FileName, .. cli.ArgumentList])
            inside.ArgumentList.Add(a);
        foreach (string key in inside.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal) && k != "TABULA_CI").ToArray())
            inside.Environment.Remove(key);
        var clock = Stopwatch.StartNew();
        var run = await ProcessRunner.RunAsync(inside, TimeSpan.FromSeconds(120));
        clock.Stop();
        Assert.True(run.ExitCode is 0 or 1, run.ToString());
        return (run, JsonDocument.Parse(run.Stdout).RootElement.Clone(), clock.Elapsed);
    }

    [PrivilegedFact("wireguard-go", "ip", "ping", "nft", "swtpm", "swtpm_setup", "swtpm_localca")]
    public Task A_relay_attests_with_its_tpm_is_put_into_service_and_a_customer_verifies_it_through_the_tunnel_on_sqlite() => AttestedAsync(null);

    [PrivilegedFact("wireguard-go", "ip", "ping", "nft", "swtpm", "swtpm_setup", "swtpm_localca")]
    public async Task A_relay_attests_with_its_tpm_is_put_into_service_and_a_customer_verifies_it_through_the_tunnel_on_postgresql()
    {
        if (await PostgresServer.SharedAsync() is not { } postgres) return;
        await AttestedAsync(await postgres.CreateDatabaseAsync());
    }

    async Task AttestedAsync(string? database)
    {
        using var relay = new AttestingRelay(database);
        await using var rig = await StartAsync(egress: true, attesting: relay);
        var enrolling = Stopwatch.StartNew();
        await Until(() => rig.Agent.Attestation is not null, "an enrollment with a verdict");
        enrolling.Stop();
        Assert.True(rig.Agent.Attestation!.Status == "attested", $"{rig.Agent.Attestation.FailedStep}: {rig.Agent.Attestation.Detail}\n{rig.Console}");
        Assert.NotNull(rig.Agent.Attestation.AkCertificate);

        // Attested, so staff can put it into service (DeployAsync provisions and deploys through the real API).
        string id = await DeployAsync(rig);
        using (var staff = rig.Fleet.Client(rig.Fleet.AdminToken))
        {
            var machine = await staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView);
            Assert.Equal("attested", machine!.Attestation);
            Assert.Equal(relay.PackageDigest, machine.AttestedPackageDigest);
        }
        await Until(() => rig.Agent.AttestationService is not null, "the in-tunnel attestation service");

        // A customer connects, then checks the relay from inside its tunnel.
        var (device, _, clientKey) = await AddCustomerDeviceAsync(rig);
        using var __ = clientKey;
        await Until(() => rig.Agent.Sync.AppliedRevision >= device.Revision, "the device to be applied");
        var connecting = Stopwatch.StartNew();
        await ConfigureClientAsync(rig, clientKey, device, egress: true);
        await Until(() => Ping(rig), "a ping through the tunnel", 30);
        connecting.Stop();

        var (run, json, took) = await RelayAttestAsync(rig, relay, rig.Agent.PublicKey);
        Assert.True(run.ExitCode == 0, run.ToString() + "\n" + rig.Console);
        Assert.True(json.GetProperty("verified").GetBoolean());
        Assert.Equal(relay.PackageDigest, json.GetProperty("package_sha256").GetString());
        Assert.Equal(Tabula.Attestation.AttestationStep.All, json.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("name").GetString()!));
        Assert.True(json.GetProperty("steps").EnumerateArray().All(s => s.GetProperty("ok").GetBoolean()));

        // The same service asked about another WireGuard key: the evidence is genuine, but for this relay's key, so the
        // customer's check fails at key-binding (and every step before it passes).
        byte[] otherKey = RandomNumberGenerator.GetBytes(32);
        var (refused, refusedJson, _) = await RelayAttestAsync(rig, relay, otherKey);
        Assert.True(refused.ExitCode == 1, refused.ToString());
        var steps = refusedJson.GetProperty("steps").EnumerateArray().ToList();
        Assert.Equal(Tabula.Attestation.AttestationStep.KeyBinding, steps[^1].GetProperty("name").GetString());
        Assert.False(steps[^1].GetProperty("ok").GetBoolean());
        Assert.All(steps.SkipLast(1), s => Assert.True(s.GetProperty("ok").GetBoolean(), refused.Stdout));
        Assert.Equal(2, rig.Agent.AttestationService!.Served);

        // The console names no customer key or address, attestation or not.
        string printed = rig.Console.ToString();
        Assert.DoesNotContain(device.PublicKey, printed);
        Assert.DoesNotContain(device.Ipv4Address, printed);
        Console.WriteLine($"attestation ({(database is null ? "SQLite" : "PostgreSQL")}): TPM work before enrolling (EK, SRK, AK, PCR 14) " +
                          $"{relay.TpmOpen.TotalMilliseconds:0} ms; agent start to attested enrollment {enrolling.Elapsed.TotalMilliseconds:0} ms; " +
                          $"client connect (configure to first ping) {connecting.Elapsed.TotalMilliseconds:0} ms; one in-tunnel `relay attest` {took.TotalMilliseconds:0} ms");
        Console.WriteLine(string.Join('\n', printed.Split('\n').Where(l => l.Contains("stage:attest") || l.Contains("stage:enroll"))));
    }

    [PrivilegedFact("wireguard-go", "ip", "swtpm", "swtpm_setup", "swtpm_localca")]
    public async Task A_relay_whose_tpm_measured_another_wireguard_key_fails_at_key_binding_and_is_never_put_into_service()
    {
        using var relay = new AttestingRelay(null) { MeasuredKey = RandomNumberGenerator.GetBytes(32) };
        await using var rig = await StartAsync(attesting: relay);
        await Until(() => rig.Agent.Attestation is not null, "an enrollment with a verdict");
        Assert.Equal("failed", rig.Agent.Attestation!.Status);
        Assert.Equal(Tabula.Attestation.AttestationStep.KeyBinding, rig.Agent.Attestation.FailedStep);
        Assert.Null(rig.Agent.Attestation.AkCertificate);

        using var staff = rig.Fleet.Client(rig.Fleet.AdminToken);
        string id = rig.Agent.MachineId!;
        var machine = await staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView);
        Assert.Equal("failed", machine!.Attestation);
        Assert.Equal(Tabula.Attestation.AttestationStep.KeyBinding, machine.AttestationFailedStep);
        using var refused = await staff.PostAsJsonAsync($"/api/v1/machines/{id}/provision", new ProvisionRequest("se-got-wg-002", "se", "Sweden", "got", "Gothenburg",
            "31173", true, "10.203.0.1", null, rig.Port, 100, true, "test rack"), FleetJson.Default.ProvisionRequest);
        Assert.Equal(HttpStatusCode.Conflict, refused.StatusCode);
        Assert.Contains("not_attested", await refused.Content.ReadAsStringAsync());
        await Task.Delay(1000);
        Assert.Equal("awaiting", rig.Agent.State);
        Assert.False(rig.Agent.Serving);
        Assert.Contains("refused the evidence at key-binding", rig.Console.ToString());
    }
}
