using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Tabula.EndToEnd.Tests.Harness;
using Tabula.Fleet.Api;
using Tabula.Images.Relay;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;
using Tabula.Testing;
using Tabula.Testing.Packages;

namespace Tabula.EndToEnd.Tests;

/// <summary>
/// The RAM-only relay end to end (issue 6): stboot boots the signed relay package from the provisioning server; the
/// agent enrolls with the fleet controller over pinned HTTPS and waits; the test, as staff, provisions and deploys it;
/// a customer device added through the API reaches kernel WireGuard in the guest; a real client (wireguard-go and
/// `wg` in the test namespace) completes a handshake and pings the relay's tunnel address; the device is removed and
/// the next handshake fails. A raw virtual disk is attached (and its driver loaded) the whole time and hashes the same
/// at the end; neither the console nor the controller's log names the client's key or addresses.
/// The machine is addressed by DHCP (dnsmasq, a reservation for its MAC), in stboot and again in the agent, and the
/// package names the controller by a host name, which the agent resolves through the DNS server of its lease.
/// Measured boot and attestation (issue 19, docs/attestation.md): the machine has a TPM 2.0 (tpm-tis, an swtpm whose EK
/// certificate the test's manufacturer CA issued), stboot's trust policy requires measured boot, and the controller
/// requires attestation with that CA as its TPM roots and the package allowed by staff before boot: the relay's
/// enrollment is attested (every step) before staff can put it into service, and the customer runs the real
/// `tabula relay attest` through its tunnel. A relay booted without stboot (its package's kernel and initramfs given to
/// QEMU directly) fails at `measured-boot` and is never put into service.
/// <code>
///   test namespace: tap0 10.199.N.1 ── dnsmasq (DHCP, DNS: fleet.tabula-e2e.test), provisioning :8443, fleet :9443,
///                                      wireguard-go client (device address/32)
///   guest 10.199.N.2 (DHCP): stboot → kexec → tabula-relay, wg0 10.64.0.1/10 :51820, /dev/vda (never mounted)
/// </code>
/// </summary>
[Collection(BootCollection.Name)]
public sealed class RelayTests(BootBinary boot, RelayBinary relay, ITestOutputHelper output) : IClassFixture<RelayBinary>, IDisposable
{
    static readonly TimeSpan Stage = TimeSpan.FromSeconds(240);
    readonly string work = Directory.CreateTempSubdirectory("tabula-e2e-relay-").FullName;
    readonly TestSigner root = SignedPackages.Root();

    public void Dispose() => Directory.Delete(work, recursive: true);

    static string Sha256File(string path)
    {
        using var file = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(file));
    }

    static string InNamespace(TapNetwork network, params string[] command) =>
        Prerequisites.Run("ip", ["netns", "exec", network.Namespace.Name, .. command]);

    /// <summary>Until the controller has the relay's report of <paramref name="revision"/> applied.</summary>
    static async Task WaitAppliedAsync(HttpClient staff, string machineId, long revision)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while ((await staff.GetFromJsonAsync($"/api/v1/machines/{machineId}", FleetJson.Default.MachineView))!.AppliedRevision < revision)
        {
            if (clock.Elapsed > Stage) Assert.Fail($"the relay did not report revision {revision} applied within {Stage.TotalSeconds:0}s");
            await Task.Delay(250);
        }
    }

    static bool Ping(TapNetwork network)
    {
        try { return InNamespace(network, "ping", "-c", "1", "-W", "2", "10.64.0.1").Contains("1 received"); }
        catch (InvalidOperationException) { return false; }
    }

    /// <summary>wireguard-go in the foreground inside the namespace (so the test owns the process), once its UAPI socket exists.</summary>
    static System.Diagnostics.Process StartClientDaemon(TapNetwork network, string name)
    {
        var start = new System.Diagnostics.ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in new[] { "netns", "exec", network.Namespace.Name, "wireguard-go", "-f", name })
            start.ArgumentList.Add(a);
        start.Environment["LOG_LEVEL"] = "error";
        var daemon = System.Diagnostics.Process.Start(start)!;
        daemon.OutputDataReceived += (_, _) => { };
        daemon.ErrorDataReceived += (_, _) => { };
        daemon.BeginOutputReadLine();
        daemon.BeginErrorReadLine();
        for (int i = 0; i < 200 && !File.Exists($"/var/run/wireguard/{name}.sock"); i++)
        {
            if (daemon.HasExited) throw new InvalidOperationException($"wireguard-go {name} exited with {daemon.ExitCode}");
            Thread.Sleep(50);
        }
        return daemon;
    }

    const string FleetName = "fleet.tabula-e2e.test";
    const string GuestMac = "52:54:00:7a:b0:01";

    /// <summary>The relay package: the guest kernel, tabula-relay as /init, the controller's URL and CA, WireGuard and the
    /// virtio NIC — and virtio_blk, so a disk is a real /dev/vda the agent could mount and must not.</summary>
    byte[] RelayArchive(GuestKernel kernel, FleetProcess fleet)
    {
        using var zip = new MemoryStream();
        RelayImage.Write(new RelayImageInputs(relay.Path, kernel.Release, fleet.NamedUrl, fleet.Tls.CaCertificate,
            [.. RelayImageInputs.DefaultModules, "virtio_blk"]) { Kernel = kernel.KernelPath }, zip);
        return zip.ToArray();
    }

    /// <summary>Staff allow the package (the controller's `package` step), before any machine boots it.</summary>
    static async Task AllowAsync(HttpClient staff, string digest)
    {
        using var allowed = await staff.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(digest, "e2e"), FleetJson.Default.AllowPackageRequest);
        Assert.True(allowed.IsSuccessStatusCode, $"allow {digest}: {(int)allowed.StatusCode} {await allowed.Content.ReadAsStringAsync()}");
    }

    /// <summary>The host configuration of the test's machine (DHCP on its NIC, the relay's secrets).</summary>
    static string HostConfig(string pointer, byte[] identity, string enrollmentToken) => $$"""
        {"network_mode": "dhcp",
         "network_interfaces": [{"interface_name": "eth0", "mac_address": "{{GuestMac}}"}],
         "ospkg_pointer": "{{pointer}}",
         "tabula_relay": {"identity_key": "{{Convert.ToBase64String(identity)}}", "enrollment_token": "{{enrollmentToken}}"} }
        """;

    /// <summary>SHA-256 PCR extend: SHA-256(old ‖ digest).</summary>
    static byte[] Extend(byte[] pcr, byte[] digest) => SHA256.HashData([.. pcr, .. digest]);

    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "wireguard-go", "wg", "ping", "dnsmasq")]
    public async Task Stboot_boots_the_relay_which_takes_dhcp_resolves_the_fleet_name_enrolls_serves_a_deployed_customer_drops_a_removed_key_and_leaves_the_disk_untouched()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "wireguard-go", "wg", "ping", "dnsmasq");
        GuestKernel kernel = GuestKernel.Require();
        using var network = TapNetwork.Create();
        using var dnsmasq = Dnsmasq.Start(network, new Dictionary<string, string> { [GuestMac] = network.GuestAddress.ToString() },
            new Dictionary<string, System.Net.IPAddress> { [FleetName] = network.HostAddress });
        // The machine's TPM maker; the controller trusts it for EK certificates and requires attestation.
        var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(work, "tpm-manufacturer"));
        using var fleet = FleetProcess.Start(network, hostName: FleetName, tpmRoots: manufacturer.CertificatePath);
        using var staff = fleet.Client(fleet.AdminToken);
        string enrollmentToken = (await FleetProcess.PostAsync(staff, "/api/v1/enrollment-tokens", new NameRequest("e2e"), FleetJson.Default.TokenResponse)).Token;

        byte[] archive = RelayArchive(kernel, fleet);
        var signers = new[] { SignedPackages.Leaf(root), SignedPackages.Leaf(root), SignedPackages.Leaf(root) };
        using var provisioning = ProvisioningProcess.Prepare(network, SignedPackages.TrustPolicy(Path.Combine(work, "prov-trust"), 2, "network", [root]));
        string digest = await provisioning.PublishAsync(SignedPackages.Descriptor(archive, "", signers[0], signers[2]), archive, "stable");
        provisioning.Start();
        await AllowAsync(staff, digest);

        byte[] identity = Ed25519.NewPrivateKey();
        string image = OsPackages.For(boot).StbootImage("stboot-relay",
            SignedPackages.TrustPolicy(Path.Combine(work, "trust"), 2, "network", [root], provisioning.CaPem, MeasuredBootMode.Required),
            HostConfig($"{provisioning.BaseUrl}/channels/stable.json", identity, enrollmentToken), ["virtio_net", "virtio_pci"]);
        string signingRoot = Path.Combine(work, "signing-root.pem");
        File.WriteAllText(signingRoot, root.CertificatePem);

        string disk = Path.Combine(work, "disk.raw");
        File.WriteAllBytes(disk, RandomNumberGenerator.GetBytes(32 * 1024 * 1024));
        string diskBefore = Sha256File(disk);

        string keyFile = Path.Combine(work, "client.key");
        string clientPublic = Prerequisites.Run("sh", "-c", $"umask 077; wg genkey > '{keyFile}' && wg pubkey < '{keyFile}'").Trim();
        DeviceView? device = null;
        // UAPI sockets are global (/var/run/wireguard/NAME.sock): a name of this run's own, and the daemon killed at the end.
        string client = $"twc{Environment.ProcessId % 100000}";
        System.Diagnostics.Process? clientDaemon = null;
        string console;
        using var tpm = GuestTpm.Start(manufacturer);
        var machine = Guest.Start(nameof(Stboot_boots_the_relay_which_takes_dhcp_resolves_the_fleet_name_enrolls_serves_a_deployed_customer_drops_a_removed_key_and_leaves_the_disk_untouched),
            kernel.KernelPath, image, "console=ttyS0 panic=-1 quiet", network, disk, GuestMac, tpm.Qemu);
        try
        {
            var kexec = machine.WaitFor(ConsoleMarker.Boot("kexec"), Stage);
            // stboot measured into the QEMU TPM before it handed over: PCR 12 is the package's archive and descriptor.
            var measure = ConsoleLine.TryParse(machine.WaitFor(ConsoleMarker.Boot("stage:measure"), Stage).Line)!;
            byte[] descriptor = System.Text.Encoding.UTF8.GetBytes(InNamespace(network, "curl", "-sSfk", "--max-time", "30", $"{provisioning.BaseUrl}/channels/stable.json"));
            Assert.Equal(Convert.ToHexStringLower(Extend(Extend(new byte[32], Convert.FromHexString(digest)), SHA256.HashData(descriptor))),
                measure.Field("pcr12"));
            var relayNetwork = machine.WaitFor(ConsoleMarker.Relay("stage:network"), Stage);
            Assert.Contains($"dhcp server={network.HostAddress} ", relayNetwork.Line);
            Assert.Contains($"address={network.GuestAddress}/24 gateway={network.HostAddress} dns=1", relayNetwork.Line);
            var attest = ConsoleLine.TryParse(machine.WaitFor(ConsoleMarker.Relay("stage:attest"), Stage).Line)!;
            Assert.Equal("required", attest.Field("mode"));   // stboot measured this boot
            var enrolled = machine.WaitFor(ConsoleMarker.Relay("enroll"), Stage);
            Assert.Equal("attested", ConsoleLine.TryParse(machine.WaitFor(ConsoleMarker.Relay("stage:enroll"), Stage).Line)!.Field("attestation"));
            var enrollment = ConsoleLine.TryParse(enrolled.Line)!;
            string machineId = enrollment.Field("machine")!;
            Assert.Equal(32, machineId.Length);
            Assert.Equal(39, enrollment.Field("fingerprint")!.Length);
            Assert.Equal("awaiting", enrollment.Field("state"));
            var view = (await staff.GetFromJsonAsync($"/api/v1/machines/{machineId}", FleetJson.Default.MachineView))!;
            Assert.Equal((digest, enrollment.Field("fingerprint"), "awaiting"), (view.PackageDigest, view.Fingerprint, view.State));
            // The controller verified every step and says so to staff: the attested package is the one stboot booted.
            Assert.True(view.Attestation == "attested", $"{view.Attestation} at {view.AttestationFailedStep}: {view.AttestationDetail}");
            Assert.Equal((digest, (string?)null), (view.AttestedPackageDigest, view.AttestationFailedStep));
            await Task.Delay(TimeSpan.FromSeconds(3));
            Assert.DoesNotContain(machine.Console.Split('\n'), ConsoleMarker.Relay("stage:serve").Matches);   // waits for staff

            string relayKey = view.WireguardPublicKey;
            await FleetProcess.PostAsync(staff, $"/api/v1/machines/{machineId}/provision", new ProvisionRequest("se-got-wg-001", "se", "Sweden",
                "got", "Gothenburg", "31173", true, network.GuestAddress.ToString(), null, 51820, 100, true, "e2e"), FleetJson.Default.MachineView);
            await FleetProcess.PostAsync(staff, $"/api/v1/machines/{machineId}/deploy", new ReasonRequest("e2e"), FleetJson.Default.MachineView);
            var serving = machine.WaitFor(ConsoleMarker.Relay("stage:serve"), Stage);
            // The agent sets wg0's MTU over rtnetlink and reads it back from the guest's kernel (docs/relay.md "WireGuard interface MTU").
            Assert.Equal("1420", ConsoleLine.TryParse(serving.Line)!.Field("mtu"));

            // Accounts are made by staff (anonymous creation needs a voucher by default).
            var account = await FleetProcess.PostAsync(staff, "/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.AccountView);
            using var customer = fleet.Client(account.Number, "Token");
            device = await FleetProcess.PostAsync(customer, "/app/v1/devices", new AddDeviceRequest(clientPublic), FleetJson.Default.DeviceView);
            // The relay prints no line per device change: its applied-revision report says the device arrived.
            await WaitAppliedAsync(staff, machineId, device.Revision);
            var added = machine.Elapsed;

            // The customer's WireGuard client, in the test namespace, pointed at the relay's public address.
            var connecting = System.Diagnostics.Stopwatch.StartNew();
            clientDaemon = StartClientDaemon(network, client);
            InNamespace(network, "wg", "set", client, "private-key", keyFile, "peer", relayKey,
                "endpoint", $"{network.GuestAddress}:51820", "allowed-ips", "10.64.0.1/32");
            network.Namespace.Ip("addr", "add", device.Ipv4Address + "/32", "dev", client);
            network.Namespace.Ip("link", "set", client, "up");
            network.Namespace.Ip("route", "add", "10.64.0.1/32", "dev", client);
            bool reached = false;
            for (int i = 0; i < 15 && !reached; i++) reached = Ping(network);
            Assert.True(reached, "no ping through the tunnel");
            connecting.Stop();
            string handshake = InNamespace(network, "wg", "show", client, "latest-handshakes");
            Assert.Matches($"{Regex.Escape(relayKey)}\\s+[1-9][0-9]+", handshake);

            // The customer checks the relay from inside the tunnel: the real `tabula relay attest` to the gateway address.
            var attesting = System.Diagnostics.Stopwatch.StartNew();
            string verdict = fleet.Cli(network.Namespace.Name, "relay", "attest", "--gateway", "10.64.0.1", "--relay-key", relayKey,
                "--signing-root", signingRoot, "--tpm-roots", manufacturer.CertificatePath, "--threshold", "2", "--json", "--timeout", "60");
            attesting.Stop();
            using (var json = System.Text.Json.JsonDocument.Parse(verdict))
            {
                Assert.True(json.RootElement.GetProperty("verified").GetBoolean(), verdict);
                Assert.Equal(digest, json.RootElement.GetProperty("package_sha256").GetString());
                var steps = json.RootElement.GetProperty("steps").EnumerateArray().ToList();
                Assert.All(steps, step => Assert.True(step.GetProperty("ok").GetBoolean(), verdict));
                var names = steps.Select(step => step.GetProperty("name").GetString()).ToList();
                foreach (string step in new[] { "ek-certificate", "ak-activation", "quote", "event-log", "measured-boot", "package", "key-binding" })
                    Assert.Contains(step, names);
            }
            output.WriteLine($"measured boot: stboot's measure took {measure.Field("took")}, the relay's attest stage {attest.Field("took")}; " +
                $"in-tunnel relay attest {attesting.Elapsed.TotalMilliseconds:0} ms end to end, " +
                $"against {connecting.Elapsed.TotalMilliseconds:0} ms for the client to connect (wireguard-go started and configured to first ping)");

            using (var removed = await customer.DeleteAsync($"/app/v1/devices/{device.Id}"))
            {
                Assert.True(removed.IsSuccessStatusCode);
                long revision = (await removed.Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse))!.Revision;
                await WaitAppliedAsync(staff, machineId, revision);
            }
            // A fresh client session (the old one is dead on the relay's side anyway): its handshake gets no answer.
            InNamespace(network, "wg", "set", client, "peer", relayKey, "remove");
            InNamespace(network, "wg", "set", client, "peer", relayKey, "endpoint", $"{network.GuestAddress}:51820", "allowed-ips", "10.64.0.1/32");
            Assert.False(Ping(network));
            Assert.False(Ping(network));
            Assert.Matches($"{Regex.Escape(relayKey)}\\s+0", InNamespace(network, "wg", "show", client, "latest-handshakes"));

            var health = await staff.GetFromJsonAsync("/api/v1/health", FleetJson.Default.ListHealthView);
            Assert.Contains(health!, h => h.MachineId == machineId);
            output.WriteLine($"kexec at {kexec.At.TotalSeconds:0.0}s, enrolled at {enrolled.At.TotalSeconds:0.0}s, serving at {serving.At.TotalSeconds:0.0}s, " +
                $"device applied (as reported) {(added - serving.At).TotalSeconds:0.0}s after serving began; package {archive.Length} bytes");
        }
        finally
        {
            console = machine.Console;
            machine.Dispose();   // power off: whatever was in RAM is gone
            if (clientDaemon is { HasExited: false })
            {
                clientDaemon.Kill(entireProcessTree: true);
                clientDaemon.WaitForExit(5000);
            }
            clientDaemon?.Dispose();
            File.Delete($"/var/run/wireguard/{client}.sock");   // killed daemons leave their socket behind
            foreach (string line in console.Split('\n').Where(l => l.Contains("tabula-relay:") || l.Contains("tabula-boot: kexec") || l.Contains("timeline")))
                output.WriteLine(line);
            output.WriteLine($"log: {machine.ConsoleLog}");
        }

        // DHCP twice (stboot, then the agent after kexec reset the NIC), and the agent asked the lease's resolver for the name.
        Assert.True(dnsmasq.Log.Split('\n').Count(l => l.Contains($"DHCPACK({network.Tap}) {network.GuestAddress}", StringComparison.Ordinal)) >= 2, dnsmasq.Log);
        Assert.Contains($"query[A] {FleetName} from {network.GuestAddress}", dnsmasq.Log);
        // Amnesia: the disk the relay had the whole time is byte-for-byte what it was; the agent checked itself.
        Assert.Equal(diskBefore, Sha256File(disk));
        var amnesia = console.Split('\n').Select(l => ConsoleLine.TryParse(l)).Where(l => l is not null && l.Is(ConsoleLine.Relay, "amnesia"))
            .Select(l => l!.Detail).ToList();
        Assert.Contains("root is rootfs (RAM)", amnesia);
        Assert.Contains(amnesia, fact => fact.StartsWith("no swap", StringComparison.Ordinal));
        Assert.Contains(amnesia, fact => fact.StartsWith("core dumps off", StringComparison.Ordinal));
        // Privacy: the customer's key and addresses appear nowhere the relay printed or reported.
        foreach (string secret in new[] { clientPublic, Convert.ToHexStringLower(Convert.FromBase64String(clientPublic)), device!.Ipv4Address, device.Ipv6Address })
        {
            Assert.DoesNotContain(secret, console);
            Assert.DoesNotContain(secret, fleet.Log);
        }
    }

    /// <summary>
    /// A relay booted without stboot's measurements (issue 19): its signed package's own kernel and initramfs, with a
    /// hand-over made by hand (what someone who kexecs the package directly would give it), on a machine with a TPM made
    /// by the manufacturer the controller trusts, the package allowed. The agent attests with its genuine TPM, but the log
    /// holds no stboot measurement: the controller, requiring attestation, fails it at `measured-boot`, staff cannot
    /// provision it, and it stays awaiting without serving.
    /// </summary>
    [GuestKernelFact(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "dnsmasq", "swtpm", "swtpm_setup", "swtpm_localca")]
    public async Task A_relay_package_booted_without_stboot_fails_attestation_at_measured_boot_and_is_never_put_into_service()
    {
        Prerequisites.Require(needsRoot: true, "qemu-system-x86_64", "ip", "clang", "dnsmasq", "swtpm", "swtpm_setup", "swtpm_localca");
        GuestKernel kernel = GuestKernel.Require();
        using var network = TapNetwork.Create();
        using var dnsmasq = Dnsmasq.Start(network, new Dictionary<string, string> { [GuestMac] = network.GuestAddress.ToString() },
            new Dictionary<string, System.Net.IPAddress> { [FleetName] = network.HostAddress });
        var manufacturer = TpmManufacturer.OpenOrCreate(Path.Combine(work, "tpm-manufacturer"));
        using var fleet = FleetProcess.Start(network, hostName: FleetName, tpmRoots: manufacturer.CertificatePath);
        using var staff = fleet.Client(fleet.AdminToken);
        string enrollmentToken = (await FleetProcess.PostAsync(staff, "/api/v1/enrollment-tokens", new NameRequest("e2e"), FleetJson.Default.TokenResponse)).Token;
        byte[] archive = RelayArchive(kernel, fleet);
        string digest = Convert.ToHexStringLower(SHA256.HashData(archive));
        await AllowAsync(staff, digest);   // so the one step that can fail is measured-boot

        // The package's kernel, command line and initramfs as stboot would boot them, and after the initramfs the
        // hand-over stboot would append, without a measured_boot object: nothing measured this boot.
        string kernelFile = Path.Combine(work, "vmlinuz"), initramfs = Path.Combine(work, "initramfs.cpio");
        string cmdline;
        using (var package = OsPackageArchive.Open(new MemoryStream(archive)))
        {
            cmdline = package.Manifest.Cmdline;
            using (var file = File.Create(kernelFile))
                package.ExtractKernel(file);
            using (var file = File.Create(initramfs))
            {
                package.ExtractInitramfs(file);
                string pointer = $"https://{network.HostAddress}:8443/channels/stable.json";   // nothing serves it: nothing fetches
                new HandoverRecord(Sha256Digest.Of(archive), FetchMethod.Network, pointer, "/etc/host_configuration.json",
                    System.Text.Encoding.UTF8.GetBytes(HostConfig(pointer, Ed25519.NewPrivateKey(), enrollmentToken))).AppendTo(file);
            }
        }

        using var tpm = GuestTpm.Start(manufacturer);
        string console;
        var machine = Guest.Start(nameof(A_relay_package_booted_without_stboot_fails_attestation_at_measured_boot_and_is_never_put_into_service),
            kernelFile, initramfs, cmdline, network, mac: GuestMac, tpm: tpm.Qemu);
        try
        {
            // The TPM works: the agent makes its AK and measures its key, but stboot handed over no log.
            var attest = ConsoleLine.TryParse(machine.WaitFor(ConsoleMarker.Relay("stage:attest"), Stage).Line)!;
            Assert.Equal(("optional", "1"), (attest.Field("mode"), attest.Field("log_events")));
            var enrolled = ConsoleLine.TryParse(machine.WaitFor(ConsoleMarker.Relay("stage:enroll"), Stage).Line)!;
            Assert.Equal(("failed", "measured-boot", "awaiting"), (enrolled.Field("attestation"), enrolled.Field("step"), enrolled.Field("state")));
            string machineId = enrolled.Field("machine")!;

            var view = (await staff.GetFromJsonAsync($"/api/v1/machines/{machineId}", FleetJson.Default.MachineView))!;
            Assert.Equal(("failed", "measured-boot", "awaiting", (string?)null), (view.Attestation, view.AttestationFailedStep, view.State, view.AttestedPackageDigest));
            Assert.Equal(digest, view.PackageDigest);   // what it reports; nothing proves it

            // Staff cannot put it into service: provisioning is refused, naming the step.
            using (var provision = JsonContent.Create(new ProvisionRequest("se-got-wg-002", "se", "Sweden", "got", "Gothenburg", "31173", true,
                network.GuestAddress.ToString(), null, 51820, 100, true, "e2e"), options: FleetJson.Default.Options))
            using (var refused = await staff.PostAsync($"/api/v1/machines/{machineId}/provision", provision))
            {
                string body = await refused.Content.ReadAsStringAsync();
                Assert.True(refused.StatusCode == System.Net.HttpStatusCode.Conflict, $"{(int)refused.StatusCode} {body}");
                Assert.Contains("not_attested", body);
                Assert.Contains("measured-boot", body);
            }
            // A lasting state: still awaiting, still failed, and the relay never began serving.
            await Task.Delay(TimeSpan.FromSeconds(5));
            view = (await staff.GetFromJsonAsync($"/api/v1/machines/{machineId}", FleetJson.Default.MachineView))!;
            Assert.Equal(("awaiting", "failed", "measured-boot"), (view.State, view.Attestation, view.AttestationFailedStep));
            Assert.DoesNotContain(machine.Console.Split('\n'), ConsoleMarker.Relay("stage:serve").Matches);
            output.WriteLine($"without stboot: attest stage {attest.Field("took")}, enrolled (failed at measured-boot) at {enrolled.At.TotalSeconds:0.0}s");
        }
        finally
        {
            console = machine.Console;
            machine.Dispose();
            foreach (string line in console.Split('\n').Where(l => l.Contains("tabula-relay:")))
                output.WriteLine(line);
            output.WriteLine($"log: {machine.ConsoleLog}");
        }
    }
}
