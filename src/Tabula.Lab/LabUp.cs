using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Images.Stboot;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;
using Tabula.Provisioning;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Storage;
using Tabula.Qemu;
using Tabula.Tls;
using static Tabula.Lab.LabRunner;

namespace Tabula.Lab;

/// <summary>
/// One run of `lab up`: the seven steps of <see cref="LabRunner"/>, one method each, sharing what earlier steps made
/// (keys, package, TLS files, the forwarder's URL, the staff token, the machines). Every process is recorded in
/// <see cref="LabState"/> as soon as it starts.
/// </summary>
internal sealed class LabUp(LabOptions options)
{
    readonly Action<string> say = options.Progress;
    readonly string dir = Path.GetFullPath(options.Directory).TrimEnd('/');
    readonly List<LabStep> steps = [];
    readonly Stopwatch step = Stopwatch.StartNew();
    readonly List<LabMachine> machines = [];
    readonly List<Enrolled> enrolled = [];
    readonly string host = LabNetwork.HostAddress.ToString();

    string Namespace => NamespaceFor(dir);

    /// <summary>How long one GET /ip through a tunnel may take before the lab says "no egress".</summary>
    static readonly TimeSpan EchoTimeout = TimeSpan.FromSeconds(8);

    /// <summary>How long the lab waits for a relay's egress stage (its SLAAC address may take ~30 s to appear) before
    /// fetching /ip anyway (a relay without egress does not fail the lab: /ip says "no egress").</summary>
    static readonly TimeSpan EgressWait = TimeSpan.FromSeconds(90);
    string Logs => Path.Combine(dir, "logs");
    string FleetUrl => $"https://{host}:{FleetPort}";
    string ProvisioningUrl => $"https://{host}:{ProvisioningPort}";

    LabState state = null!;
    LabKernel kernel = null!;
    string boot = "", relay = "";
    LabSigner root = null!;
    IReadOnlyList<LabSigner> signers = [];
    DevTlsFiles provisioningTls = null!, fleetTls = null!;
    byte[] archive = [];
    VerifyResult verdict = null!;
    string server = "", token = "", tokenFile = "", password = "", ticketRootFile = "";
    LabFreshnessSummary freshness = null!;
    TpmManufacturer? manufacturer;

    /// <summary>stboot's <c>tabula_measured_boot</c> and the controller's <c>--attestation</c>: both required when the relays have TPMs.</summary>
    MeasuredBootMode MeasuredBoot => options.Tpm ? MeasuredBootMode.Required : MeasuredBootMode.Optional;
    string AttestationPolicy => options.Tpm ? "required" : "optional";
    string SigningRootFile => Path.Combine(dir, "keys", root.Name + ".pem");
    LabFirmwareSummary firmware = null!;
    LabKernel packageKernel = null!;
    bool Uefi => options.Firmware == LabFirmware.Uefi;

    sealed record Enrolled(LabMachine Machine, string Id, string Fingerprint, TimeSpan KexecAt, TimeSpan EnrolledAt)
    {
        public TimeSpan Deploy { get; set; }
    }

    void Done(string name)
    {
        steps.Add(new LabStep(name, Math.Round(step.Elapsed.TotalSeconds, 1)));
        step.Restart();
    }

    public async Task<LabSummary> RunAsync(CancellationToken ct)
    {
        var total = Stopwatch.StartNew();
        try
        {
            Prerequisites();
            Keys();
            byte[] descriptor = Package();
            await StartServersAsync(descriptor, ct);
            using var staff = Client(server, fleetTls.CaCertificate, token, "Bearer");
            await BootAsync(staff, ct);
            var device = await DeployAsync(ct);
            var relays = await TunnelsAsync(staff, device, ct);
            var summary = new LabSummary(dir, Namespace, verdict.ArchiveSha256, archive.Length,
                $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required", server + "/dashboard", StaffUsername, password, tokenFile,
                fleetTls.CaCertificate, relays, steps, Round(total.Elapsed))
            {
                FleetUrl = server,
                Freshness = freshness,
                SigningRoot = root.CertificatePem,
                TpmManufacturerCa = manufacturer?.CertificatePem,
                MeasuredBoot = MeasuredBootModes.Spell(MeasuredBoot),
                AttestationPolicy = AttestationPolicy,
                Firmware = firmware,
                ClientNamespace = LabClient.Namespace(Namespace),
                Internet = new LabInternetSummary(LabInternet.CustomerNamespaces(Namespace),
                    new EchoSummary(LabInternet.Echo4.ToString(), LabInternet.Echo6.ToString(), LabInternet.EchoName, LabInternet.EchoHttpPort),
                    LabInternet.PrivateEndpoints),
            };
            state.Summary = summary;
            state.Status = "up";
            state.Save();
            return summary;
        }
        finally
        {
            foreach (var machine in machines)
                machine.Dispose();
        }
    }

    /// <summary>1. What the host must have; a lab already up here is taken down; the static binaries.</summary>
    void Prerequisites()
    {
        say("[1/7] checking prerequisites");
        LabPrerequisites.InstallMissing(say, options.Tpm, options.Firmware, options.SecureBoot);
        var missing = LabPrerequisites.Missing(options.Tpm, options.Firmware, options.SecureBoot);
        if (missing.Count > 0)
            throw new LabException("missing: " + string.Join("; ", missing) + ". scripts/setup installs the packages (run it as root)");
        kernel = LabKernel.Find()!;
        say($"      root, qemu-system-x86_64, wireguard-go, wg, ip: ok; guest kernel {kernel.Release}");
        if (LabState.Load(dir) is not null || LabNetwork.Exists(Namespace))
        {
            say($"      a lab is already up in {dir} (namespace {Namespace}): taking it down first");
            foreach (string line in Down(dir))
                say("      " + line);
        }
        boot = NativeBinaries.Find(NativeBinaries.Boot, m => say("      " + m));
        relay = NativeBinaries.Find(NativeBinaries.Relay, m => say("      " + m));
        say($"      stboot {boot}, relay agent {relay}");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        state = new LabState { Directory = dir, Namespace = Namespace, Firmware = options.Firmware, SecureBoot = options.SecureBoot };
        state.Save();
        Done("prerequisites and binaries");
    }

    /// <summary>2. Signing root, three signers, trust policy threshold 2.</summary>
    void Keys()
    {
        say($"[2/7] signing root and 3 signers in {dir}/keys (trust policy: {LabSigning.Threshold} of 3)");
        (root, signers) = LabSigning.CreateKeys(Path.Combine(dir, "keys"));
        foreach (var signer in signers.Prepend(root))
            say($"      {signer.Name,-8} {signer.Certificate.CommonName}  key sha256 {signer.Certificate.PublicKeySha256Hex[..16]}…");
        if (options.Tpm)
        {
            // The relays' TPM vendor: it issues each swtpm's EK certificate; the controller and customers trust it as a manufacturer root.
            manufacturer = TpmManufacturer.OpenOrCreate(LabTpm.ManufacturerDirectory(dir));
            say($"      TPM manufacturer CA {manufacturer.CertificatePath} (issues every relay TPM's EK certificate; --tpm-roots of the controller and of `relay attest`)");
        }
        if (options.SecureBoot)
        {
            LabFirmware.CreateKeys(dir);
            say($"      Secure Boot: the lab's own PK, KEK and db in {LabFirmware.KeysDirectory(dir)} (RSA-2048, self-signed; enrolled in each relay's OVMF variable store)");
        }
        firmware = new LabFirmwareSummary(options.Firmware, options.SecureBoot);
        Done("keys");
    }

    /// <summary>3. Dev TLS CAs, the relay package signed by two signers and verified; returns the descriptor.</summary>
    byte[] Package()
    {
        say("[3/7] relay OS package: kernel + initramfs with tabula-relay as /init, signed by signer1 and signer2");
        var now = DateTimeOffset.UtcNow;
        provisioningTls = DevCertificateAuthority.Init(Path.Combine(dir, "provisioning", "tls"), [host], now, TimeSpan.FromDays(30), TimeSpan.FromDays(30), force: true);
        fleetTls = DevCertificateAuthority.Init(Path.Combine(dir, "fleet", "tls"), [host], now, TimeSpan.FromDays(30), TimeSpan.FromDays(30), force: true,
            caName: "Tabula fleet CA");
        string packages = Path.Combine(dir, "packages");
        Directory.CreateDirectory(packages);
        packageKernel = LabFirmware.PackageKernel(kernel, dir, options.SecureBoot);
        if (options.SecureBoot)
            say($"      Secure Boot: the package's kernel is {kernel.KernelPath} with Debian's signature replaced by the lab's db key ({packageKernel.KernelPath}): " +
                "under lockdown stboot's kexec_file_load takes only a kernel signed by a key the kernel trusts");
        (archive, var image) = BuildRelayArchive(relay, packageKernel, fleetTls.CaCertificate, "Tabula lab relay", release: 1, options.RelayCmdline);
        say($"      {archive.Length / 1e6:0.0} MB (kernel {image.KernelBytes / 1e6:0.0} MB, initramfs {image.InitramfsBytes / 1e6:0.0} MB, " +
            $"{image.ModuleLoadOrder.Count} modules for WireGuard and virtio-net); pins the fleet CA for {FleetUrl}");
        byte[] descriptor = LabSigning.Sign(archive, [signers[0], signers[1]]);
        File.WriteAllBytes(Path.Combine(packages, "relay.zip"), archive);
        File.WriteAllBytes(Path.Combine(packages, "relay.json"), descriptor);
        verdict = LabSigning.Verify(descriptor, archive, root);
        if (!verdict.Accepted)
            throw new LabException($"the lab's own package does not verify: {verdict.Summary}");
        say($"      verified: {verdict.Summary}; sha256 {verdict.ArchiveSha256}");
        Done("package");
        return descriptor;
    }

    /// <summary>4. Namespace, provisioning server (package on `stable`), fleet controller and its first admin, the forwarder.</summary>
    async Task StartServersAsync(byte[] descriptor, CancellationToken ct)
    {
        say($"[4/7] network namespace {Namespace}: bridge {LabNetwork.Bridge} {host}/24, {options.Relays} tap(s); no route out, no NAT");
        LabNetwork.Create(Namespace, options.Relays);
        Directory.CreateDirectory(Logs);
        await StartInternetAsync(ct);

        string provisioningTrust = LabSigning.WriteTrustPolicy(Path.Combine(dir, "provisioning", "trust"), root, null);
        string store = Path.Combine(dir, "provisioning", "store");
        var core = new ProvisioningCore(new FileStore(store), TrustPolicyVerifier.FromDirectory(provisioningTrust), TimeProvider.System,
            new ProvisioningLimits(), publicBaseUrl: null);
        var published = await core.PublishAsync(descriptor, new MemoryStream(archive), "stable", "lab", ct);
        var (provisioningToken, tokenRecord) = StaffTokens.Create("lab", DateTimeOffset.UtcNow);   // what `tabula provisioning token create` does
        await new FileStore(store).AddTokenAsync(tokenRecord, ct);
        WriteSecret(ProvisioningTokenFile(dir), provisioningToken);
        string provisioningConfig = Path.Combine(dir, "provisioning", "prov.json");
        File.WriteAllText(provisioningConfig, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Listen"] = ProvisioningUrl, ["StoreDirectory"] = store, ["TrustPolicyDirectory"] = provisioningTrust,
            ["Tls"] = new Dictionary<string, string> { ["CertificatePath"] = provisioningTls.ServerCertificate, ["KeyPath"] = provisioningTls.ServerKey },
        }, LabConfigJson.Default.DictionaryStringObject));
        StartServer(state, "provisioning", options.Tabula, ["provisioning", "serve", "--config", provisioningConfig], provisioningConfig, Logs, null);
        await WaitListeningAsync(Namespace, new IPEndPoint(LabNetwork.HostAddress, ProvisioningPort), "provisioning server", Path.Combine(Logs, "provisioning.log"), ct);
        say($"      provisioning server {ProvisioningUrl} (log {Logs}/provisioning.log); package {published.Package.ArchiveSha256[..16]}… published to `stable`");

        password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(12)).Replace('/', 'x').Replace('+', 'y');
        string database = "sqlite:" + Path.Combine(dir, "fleet", "fleet.db");
        string created = HostProcess.Run([.. options.Tabula, "fleet", "staff", "create", "--db", database, "--username", StaffUsername, "--role", "admin",
            "--api-token", "lab", "--json"], environment: new Dictionary<string, string> { ["TABULA_FLEET_PASSWORD"] = password });
        token = JsonDocument.Parse(created).RootElement.GetProperty("api_token").GetString()
                ?? throw new LabException("fleet staff create printed no API token");
        tokenFile = Path.Combine(dir, "fleet", "admin.token");
        WriteSecret(tokenFile, token);
        // The controller's boot-ticket key (made now, as `serve` would at first start): its public half goes into every
        // stboot image's trust policy, beside (not among) the signing and TLS roots.
        ticketRootFile = Path.Combine(dir, "fleet", "ticket_root.pem");
        HostProcess.Run([.. options.Tabula, "fleet", "ticket-key", "--offline", "--db", database, "--out", ticketRootFile]);
        say($"      boot-ticket key: public half {ticketRootFile} (tabula fleet ticket-key --offline --db … --out …)");
        StartServer(state, "fleet", options.Tabula, ["fleet", "serve", "--db", database, "--urls", FleetUrl,
            "--tls-cert", fleetTls.ServerCertificate, "--tls-key", fleetTls.ServerKey, .. LabInternet.FleetResolverArguments,
            "--attestation", AttestationPolicy, .. manufacturer is null ? Array.Empty<string>() : ["--tpm-roots", manufacturer.CertificatePath]],
            database, Logs, null);
        await WaitListeningAsync(Namespace, new IPEndPoint(LabNetwork.HostAddress, FleetPort), "fleet controller", Path.Combine(Logs, "fleet.log"), ct);
        say($"      fleet controller {FleetUrl} on SQLite (log {Logs}/fleet.log); staff {StaffUsername} created offline; attestation {AttestationPolicy}" +
            (manufacturer is null ? "" : $" (--tpm-roots {manufacturer.CertificatePath})"));

        int port = FreeLoopbackPort();
        int forward = HostProcess.StartDetached([.. options.Tabula, "lab", "forward", "--netns", Namespace, "--listen", $"127.0.0.1:{port}",
            "--to", $"{host}:{FleetPort}"], Path.Combine(Logs, "forward.log"), dir);
        state.Add(new LabProcess("forwarder", forward, "--netns " + Namespace + " "));
        await WaitAsync(() => CanConnectLoopback(port), TimeSpan.FromSeconds(30), "the dashboard forwarder", Path.Combine(Logs, "forward.log"), ct);
        server = $"https://127.0.0.1:{port}";
        say($"      dashboard {server}/dashboard → {FleetUrl} (loopback forwarder, log {Logs}/forward.log)");
        Done("servers");
    }

    /// <summary>4a. The lab internet (<see cref="LabInternet"/>): public segment and router, RAs on br0, inet0, the echo host
    /// (HTTP and DNS) and the customer namespaces.</summary>
    async Task StartInternetAsync(CancellationToken ct)
    {
        LabInternet.Create(Namespace);
        string echoNs = LabInternet.EchoNamespace(Namespace);
        string raPid = Path.Combine(Logs, "dnsmasq-ra.pid"), dnsPid = Path.Combine(Logs, "dnsmasq-echo.pid");
        state.Add(new LabProcess("dnsmasq ra", HostProcess.StartDetached(LabInternet.RouterAdvertiser(Namespace, raPid), Path.Combine(Logs, "dnsmasq-ra.log"), dir), raPid));
        state.Add(new LabProcess("dnsmasq echo", HostProcess.StartDetached(LabInternet.EchoDns(Namespace, dnsPid), Path.Combine(Logs, "dnsmasq-echo.log"), dir), dnsPid));
        string echoLog = Path.Combine(Logs, "echo.log");
        int echo = HostProcess.StartDetached([.. options.Tabula, "lab", "echo", "--netns", echoNs, "--port", LabInternet.EchoHttpPort.ToString(CultureInfo.InvariantCulture)],
            echoLog, dir);
        state.Add(new LabProcess("echo", echo, "--netns " + echoNs + " "));
        await WaitListeningAsync(echoNs, new IPEndPoint(LabInternet.Echo4, LabInternet.EchoHttpPort), "echo host", echoLog, ct);
        foreach (string log in new[] { "dnsmasq-ra.log", "dnsmasq-echo.log" }.Select(l => Path.Combine(Logs, l)))
            await WaitAsync(() => File.Exists(log) && File.ReadAllText(log).Contains("started", StringComparison.Ordinal), TimeSpan.FromSeconds(30),
                "dnsmasq (" + Path.GetFileName(log) + ")", log, ct);
        say($"      lab internet: relays' public segment {LabInternet.PublicGateway4}/24 and {LabInternet.PublicGateway6}/64 on {LabNetwork.Bridge} (RAs by dnsmasq), " +
            $"{LabInternet.Bridge} {LabInternet.InternetGateway4}/24; echo host {LabInternet.EchoName} {LabInternet.Echo4} {LabInternet.Echo6} (HTTP :{LabInternet.EchoHttpPort}, DNS :53); " +
            $"customers {string.Join(", ", LabInternet.CustomerNamespaces(Namespace))}");
    }

    /// <summary>5. Per relay an enrollment token, identity key, stboot image and QEMU machine; waits for kexec and enrollment.</summary>
    async Task BootAsync(HttpClient staff, CancellationToken ct)
    {
        // Freshness (issue 16): stboot asks the controller for a boot ticket each attempt (over TLS pinned to the fleet CA, so
        // both CAs are its TLS roots), never boots without one, and never boots a relay package below release 1.
        var policy = new FreshnessPolicy(FreshnessMode.Required, MinRelease: 1, MachineClass, new Uri($"{FleetUrl}/boot/v1/ticket"));
        string trust = LabSigning.WriteTrustPolicy(Path.Combine(dir, "stboot", "trust"), root,
            File.ReadAllText(provisioningTls.CaCertificate) + File.ReadAllText(fleetTls.CaCertificate),
            freshness: policy, ticketRoot: Ed25519Keys.FromPublicKeyPem(File.ReadAllBytes(ticketRootFile)), measuredBoot: MeasuredBoot);
        freshness = new LabFreshnessSummary(FreshnessPolicy.Spell(policy.Mode), policy.MinRelease, MachineClass, policy.TicketUrl.ToString(), ticketRootFile);
        // The controller names each machine's package in its boot tickets: release 1 is the class's current one.
        var current = await PostAsync(staff, $"/api/v1/releases/{MachineClass}/current",
            new SetCurrentReleaseRequest(verdict.ArchiveSha256, 1, "lab up: the first release"), FleetJson.Default.SetCurrentReleaseRequest,
            FleetJson.Default.ReleaseClassView, ct);
        say($"      stboot trust policy: 2 of 3 signers, freshness {freshness.Mode} (ticket from {policy.TicketUrl}, floor r{policy.MinRelease}, class {MachineClass}); " +
            $"the controller's class {current.MachineClass} boots r{current.CurrentRelease} ({verdict.ArchiveSha256[..16]}…), floor r{current.MinRelease} " +
            $"(tabula fleet releases set-current --class {MachineClass} --digest … --release 1); measured boot {MeasuredBootModes.Spell(MeasuredBoot)}");
        // Staff allow the package before any relay boots it: with --attestation required the controller attests a relay only when
        // the package it measured is allowed, and a relay rebooted from it keeps its state.
        StaffCli(say, options.Tabula, token, tokenFile,
            ["fleet", "packages", "allow", verdict.ArchiveSha256, "--reason", "lab up: the relays boot it", "--server", server, "--ca", fleetTls.CaCertificate]);
        if (Uefi)
        {
            var (uki, ukiBytes) = LabFirmware.BuildUki(dir, boot, trust, kernel, options.SecureBoot);
            string code = options.SecureBoot ? Qemu.QemuFirmware.DebianSecureBootCode : Qemu.QemuFirmware.DebianCode;
            firmware = firmware with
            {
                Code = code, Uki = uki, UkiBytes = ukiBytes, HostConfig = Images.Uefi.StHostConfigVariable.FullName,
                Keys = options.SecureBoot ? LabFirmware.KeysDirectory(dir) : null, PackageKernel = options.SecureBoot ? packageKernel.KernelPath : null,
            };
            say($"      UEFI: stboot UKI {uki} ({ukiBytes / 1e6:0.0} MB: systemd EFI stub, kernel {kernel.Release}, stboot initramfs without a host configuration" +
                $"{(options.SecureBoot ? ", signed with the lab's db key" : "")}); OVMF {code}; each relay's host configuration in {firmware.HostConfig} in its own variable store" +
                (options.SecureBoot ? ", with the lab's PK, KEK and db enrolled" : ""));
        }
        for (int i = 0; i < options.Relays; i++)
        {
            string name = $"relay-{i + 1}";
            string machineDir = Path.Combine(dir, "machines", name);
            Directory.CreateDirectory(machineDir);
            string enrollment = (await PostAsync(staff, "/api/v1/enrollment-tokens", new NameRequest("lab " + name), FleetJson.Default.NameRequest,
                FleetJson.Default.TokenResponse, ct)).Token;
            byte[] identity = Ed25519.NewPrivateKey();
            string hostConfig = Path.Combine(machineDir, "host_configuration.json");
            WriteSecret(hostConfig, $$"""
                {"network_mode": "static", "host_ip": "{{LabInternet.RelayPublic4(i)}}/24", "gateway": "{{LabInternet.PublicGateway4}}",
                 "network_interfaces": [{"interface_name": "eth0", "mac_address": "{{LabNetwork.RelayMac(i)}}"}],
                 "ospkg_pointer": "{{ProvisioningUrl}}/channels/stable.json",
                 "tabula_relay": {"identity_key": "{{Convert.ToBase64String(identity)}}", "enrollment_token": "{{enrollment}}"} }
                """);
            CryptographicOperations.ZeroMemory(identity);
            string media;
            if (Uefi)
            {
                LabFirmware.WriteMachineMedia(dir, machineDir, System.Text.Encoding.UTF8.GetBytes(File.ReadAllText(hostConfig).TrimEnd()), options.SecureBoot);
                media = $"ESP with the UKI, host configuration ({LabInternet.RelayPublic4(i)}, {LabNetwork.RelayMac(i)}, identity key, enrollment token) " +
                        $"in {LabFirmware.Variables(machineDir)}";
            }
            else
            {
                string initramfs = Path.Combine(machineDir, "stboot.cpio.gz");
                using (var file = File.Create(initramfs))
                    StbootImage.Write(new StbootImageInputs(boot, trust, hostConfig, kernel.Release, ["virtio_net"]), file);
                media = $"stboot image {new FileInfo(initramfs).Length / 1e6:0.0} MB ({LabInternet.RelayPublic4(i)}, {LabNetwork.RelayMac(i)}, identity key, enrollment token)";
            }
            QemuTpm? tpm = null;
            if (manufacturer is not null)
            {
                LabTpm.Manufacture(machineDir, manufacturer);
                tpm = LabTpm.PowerOn(state, name, machineDir);
            }
            var machine = LabMachine.Start(name, Namespace, machineDir, kernel, LabNetwork.Tap(i), LabNetwork.RelayMac(i), tpm, options.Firmware, options.SecureBoot);
            state.Add(new LabProcess("qemu " + name, machine.Pid, machine.ConsoleLog));
            machines.Add(machine);
            say($"[5/7] {name}: {media}; QEMU pid {machine.Pid} (TCG, 1 GiB{(Uefi ? ", OVMF" + (options.SecureBoot ? " Secure Boot" : "") : "")}), console {machine.ConsoleLog}" +
                (tpm is null ? "; no TPM" : $"; TPM 2.0 (tpm-tis) swtpm {tpm.ControlSocket}, EK certificate by the lab manufacturer"));
        }
        say("      each machine: stboot → network → fetch → verify (2 of 3) → kexec into RAM → tabula-relay enrolls (minutes under TCG)");
        foreach (var machine in machines)
        {
            var boot = await WaitBootAsync(machine, say, options.StageTimeout, ct);
            enrolled.Add(new Enrolled(machine, boot.MachineId, boot.Fingerprint, boot.KexecAt, boot.EnrolledAt));
        }
        Done("boot and enroll");
    }

    /// <summary>6. Staff provision and deploy each relay with the CLI verbs (printed); a demo customer adds one device.</summary>
    async Task<(DeviceView Device, string KeyFile, Dictionary<string, TimeSpan> AddedAt)> DeployAsync(CancellationToken ct)
    {
        say("[6/7] staff deploy, as an operator would type it (the token is in " + tokenFile + "):");
        string[] remote = ["--server", server, "--ca", fleetTls.CaCertificate];
        for (int i = 0; i < enrolled.Count; i++)
        {
            var relayMachine = enrolled[i];
            string[] provision = ["fleet", "machines", "provision", relayMachine.Id, "--hostname", $"lab-wg-{i + 1:000}", "--country-code", "se",
                "--country", "Sweden", "--city-code", "lab", "--city", "Lab", "--latitude", "57.7089", "--longitude", "11.9746", "--provider", "tabula-lab", "--owned",
                "--ipv4-in", LabInternet.RelayPublic4(i).ToString(), "--ipv6-in", LabInternet.RelayPublic6(i).ToString(), "--port", WireguardPort.ToString(CultureInfo.InvariantCulture), "--reason", "lab up", .. remote];
            string[] deploy = ["fleet", "machines", "deploy", relayMachine.Id, "--reason", "lab up", .. remote];
            TimeSpan deployedAt = TimeSpan.Zero;
            foreach (string[] command in new[] { provision, deploy })
            {
                deployedAt = relayMachine.Machine.Elapsed;
                StaffCli(say, options.Tabula, token, tokenFile, command);
            }
            var serving = await WaitWithProgressAsync(relayMachine.Machine, ConsoleMarker.Relay("stage:serve"), "the relay to serve", options, ct);
            relayMachine.Deploy = serving.At - deployedAt;
            say($"      {relayMachine.Machine.Name}: serving {relayMachine.Deploy.TotalSeconds:0.0}s after deploy: {serving.Line.Trim()}");
        }


        // The demo customer's account is made by staff, as operators do (anonymous creation needs a voucher by default).
        using var staffClient = Client(server, fleetTls.CaCertificate, token, "Bearer");
        var account = await PostAsync(staffClient, "/api/v1/customers", new CreateAccountRequest(null), FleetJson.Default.CreateAccountRequest,
            FleetJson.Default.AccountView, ct);
        using var customer = Client(server, fleetTls.CaCertificate, account.Number, "Token");
        Directory.CreateDirectory(Path.Combine(dir, "wireguard"));
        string clientPrivate = HostProcess.Run(["wg", "genkey"]).Trim();
        string clientPublic = HostProcess.Run(["wg", "pubkey"], clientPrivate + "\n").Trim();
        string keyFile = Path.Combine(dir, "wireguard", "client.key");
        File.WriteAllText(keyFile, clientPrivate + "\n");
        File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var addedAt = machines.ToDictionary(m => m.Name, m => m.Elapsed);
        var device = await PostAsync(customer, "/app/v1/devices", new AddDeviceRequest(clientPublic), FleetJson.Default.AddDeviceRequest,
            FleetJson.Default.DeviceView, ct);
        say($"      demo customer: account created, one device (its WireGuard key generated here) at revision {device.Revision}");
        Done("deploy");
        return (device, keyFile, addedAt);
    }

    /// <summary>
    /// Waits until the relay reports <paramref name="revision"/> applied (it prints no line per device change: when a
    /// customer's device came or went is not the console's business), saying every 30 s what it waits for.
    /// </summary>
    async Task<MachineView> WaitAppliedAsync(HttpClient staff, string name, string id, long revision, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        var said = TimeSpan.Zero;
        while (true)
        {
            var view = await staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView, ct)
                       ?? throw new LabException($"the controller does not know machine {id}");
            if (view.AppliedRevision >= revision)
                return view;
            if (clock.Elapsed > options.StageTimeout)
                throw new LabException($"{name} did not apply revision {revision} within {options.StageTimeout.TotalSeconds:0}s (applied {view.AppliedRevision})");
            if (clock.Elapsed - said >= TimeSpan.FromSeconds(30))
            {
                said = clock.Elapsed;
                options.Progress($"      {name}: waiting for the device to reach the relay ({clock.Elapsed.TotalSeconds:0}s, applied {view.AppliedRevision} of {revision})");
            }
            await Task.Delay(500, ct);
        }
    }

    /// <summary>7. Per relay a wireguard-go client with the device's key; a ping through the tunnel; the relay's summary.</summary>
    async Task<List<RelaySummary>> TunnelsAsync(HttpClient staff, (DeviceView Device, string KeyFile, Dictionary<string, TimeSpan> AddedAt) customer,
        CancellationToken ct)
    {
        var (device, keyFile, addedAt) = customer;
        string client = LabClient.Namespace(Namespace);
        say($"[7/7] the customer's WireGuard client (wireguard-go + wg in {client}, a customer's machine on the lab internet) to each relay; " +
            $"ping {TunnelGateway} and GET http://{LabInternet.EchoName}/ip through the tunnel");
        var relays = new List<RelaySummary>();
        for (int i = 0; i < enrolled.Count; i++)
        {
            var (machine, id, fingerprint, kexecAt, enrolledAt) = enrolled[i];
            var view = await WaitAppliedAsync(staff, machine.Name, id, device.Revision, ct);
            string iface = WireguardInterface(dir, i);
            string log = Path.Combine(Logs, iface + ".log");
            int pid = HostProcess.StartDetached(LabNetwork.Exec(client, ["wireguard-go", "-f", iface]), log, dir);
            state.Add(new LabProcess("wireguard-go " + iface, pid, iface));
            await WaitAsync(() => File.Exists($"/var/run/wireguard/{iface}.sock"), TimeSpan.FromSeconds(30), "wireguard-go " + iface, log, ct);
            var connecting = Stopwatch.StartNew();
            LabClient.Configure(client, iface, i, keyFile, view.WireguardPublicKey, device.Ipv4Address, device.Ipv6Address);
            var (handshake, ping) = LabClient.PingThrough(client, iface, view.WireguardPublicKey);
            var connect = connecting.Elapsed;
            var firstHandshake = machine.Elapsed - addedAt[machine.Name];
            say($"      {machine.Name}: {iface} → {LabClient.Endpoint(i)}: handshake {(handshake ? "done" : "NONE")}, ping {TunnelGateway} {(ping ? "answered" : "NOT answered")} " +
                $"({firstHandshake.TotalSeconds:0.0}s after the device was added; the client connected in {connect.TotalSeconds:0.00}s)");
            await WaitForEgressAsync(machine, ct);
            var seen = await LabClient.EchoSeenAsync(client, iface, EchoTimeout, ct);
            say($"      {machine.Name}: GET /ip through the tunnel: {seen.Detail}");
            RelayAttestation? attestation = null;
            if (manufacturer is not null)
            {
                attestation = LabClient.Attest(options.Tabula, client, iface, view.WireguardPublicKey, SigningRootFile, manufacturer.CertificatePath);
                say($"      {machine.Name}: $ {attestation.Command}");
                say($"      {machine.Name}: relay attest through the tunnel: {LabClient.Describe(attestation)}");
            }
            relays.Add(new RelaySummary(machine.Name, id, LabInternet.RelayPublic4(i).ToString(), fingerprint, view.State, handshake, ping, iface,
                machine.ConsoleLog, machine.StbootTimeline(),
                new RelayTimeline(Round(kexecAt), Round(enrolledAt), Round(enrolled[i].Deploy), Round(firstHandshake))
                {
                    Connect = Math.Round(connect.TotalSeconds, 2),
                })
            {
                PublicIpv4 = LabInternet.RelayPublic4(i).ToString(), PublicIpv6 = LabInternet.RelayPublic6(i).ToString(),
                EgressIpv4 = seen.Ipv4, EgressIpv6 = seen.Ipv6, Attestation = attestation, Platform = machine.StbootPlatform(),
            });
        }
        Done("tunnel");
        return relays;
    }

    /// <summary>Waits (bounded) for the relay's <c>stage:egress</c> console line: NAT and the resolver are in place.</summary>
    async Task WaitForEgressAsync(LabMachine machine, CancellationToken ct)
    {
        var marker = ConsoleMarker.Relay("stage:egress");
        var clock = Stopwatch.StartNew();
        while (machine.Find(marker) is null && clock.Elapsed < EgressWait && machine.Running)
            await Task.Delay(250, ct);
        say(machine.Find(marker) is { } found
            ? $"      {machine.Name}: egress applied ({found.At.TotalSeconds:0.0}s on its console)"
            : $"      {machine.Name}: no egress stage line within {EgressWait.TotalSeconds:0}s");
    }
}
