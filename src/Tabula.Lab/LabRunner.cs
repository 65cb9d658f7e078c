using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using Tabula.Fleet.Api;
using Tabula.Images.Relay;
using Tabula.Images.Stboot;
using Tabula.Packaging;
using Tabula.Packaging.Crypto;
using Tabula.Provisioning;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Storage;
using Tabula.Provisioning.Tls;

namespace Tabula.Lab;

/// <summary>What `lab up` is asked to do.</summary>
/// <param name="Directory">The lab directory (state, keys, packages, images, logs).</param>
/// <param name="Relays">How many relay machines to boot (each is a 1 GiB QEMU under TCG: 1 or 2 on a small machine).</param>
/// <param name="Tabula">How to run this very CLI (the executable, or dotnet + tabula.dll): the servers, the forwarder and
/// the staff commands are its verbs.</param>
/// <param name="Progress">Receives one line per step and while waiting.</param>
public sealed record LabOptions(string Directory, int Relays, IReadOnlyList<string> Tabula, Action<string> Progress)
{
    /// <summary>How long one machine may take to reach one stage (TCG on shared cores is slow).</summary>
    public TimeSpan StageTimeout { get; init; } = TimeSpan.FromMinutes(12);
}

/// <summary>
/// `tabula lab up|down`: the whole disk-less fleet on one machine. <see cref="UpAsync"/> runs the steps below and returns
/// the summary; every background process, the namespace and every file are recorded in DIR/state.json so that
/// <see cref="Down"/> removes them (also after a failed `up`). docs/lab.md describes the design.
/// <list type="number">
/// <item>prerequisites (root, QEMU, guest kernel, wireguard-go, wg, ip), the static tabula-boot and tabula-relay;</item>
/// <item>signing root and three signers, trust policy threshold 2;</item>
/// <item>dev TLS CAs, the relay OS package, signed by two signers, verified;</item>
/// <item>namespace, bridge and taps; provisioning server (package published to `stable`) and fleet controller
/// inside it; the loopback forwarder for the dashboard;</item>
/// <item>per relay an stboot image (static address, MAC, identity key, enrollment token) and a QEMU machine: stboot
/// fetches, verifies and kexecs the package; the agent enrolls;</item>
/// <item>staff provision and deploy (through the CLI verbs, printed); a demo customer device;</item>
/// <item>per relay a WireGuard client (wireguard-go + wg) that pings 10.64.0.1 through the tunnel; the summary.</item>
/// </list>
/// </summary>
public static partial class LabRunner
{
    /// <summary>The default lab directory.</summary>
    public const string DefaultDirectory = "/var/tmp/tabula-lab";

    const int ProvisioningPort = 8443, FleetPort = 9443, WireguardPort = 51820;
    const string StaffUsername = "admin";
    const string TunnelGateway = "10.64.0.1";

    /// <summary>The namespace of the lab in <paramref name="directory"/>: tabula-lab for the default directory, else
    /// tabula-lab-HASH (so a test's lab never meets an operator's).</summary>
    public static string NamespaceFor(string directory)
    {
        string full = Path.GetFullPath(directory).TrimEnd('/');
        return full == DefaultDirectory ? "tabula-lab" : "tabula-lab-" + Hash(full)[..8];
    }

    /// <summary>The customer's WireGuard client interface for relay <paramref name="index"/>. wireguard-go's control socket
    /// (/var/run/wireguard/NAME.sock) is machine-wide, so the name carries the lab's hash (≤ 15 characters).</summary>
    public static string WireguardInterface(string directory, int index) =>
        "wl" + Hash(Path.GetFullPath(directory).TrimEnd('/'))[..6] + index.ToString(CultureInfo.InvariantCulture);

    static string Hash(string text) => Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text)));

    /// <summary>Brings the lab up and returns the summary. A lab already up in the directory is taken down first.</summary>
    public static async Task<LabSummary> UpAsync(LabOptions options, CancellationToken ct)
    {
        if (options.Relays is < 1 or > 8)
            throw new LabException($"--relays is 1 to 8 (each relay is a 1 GiB QEMU machine under software emulation), got {options.Relays}");
        string dir = Path.GetFullPath(options.Directory).TrimEnd('/');
        string ns = NamespaceFor(dir);
        var say = options.Progress;
        var total = Stopwatch.StartNew();
        var steps = new List<LabStep>();
        var step = Stopwatch.StartNew();
        void Done(string name)
        {
            steps.Add(new LabStep(name, Math.Round(step.Elapsed.TotalSeconds, 1)));
            step.Restart();
        }

        // 1. Prerequisites.
        say("[1/7] checking prerequisites");
        var missing = LabPrerequisites.Missing();
        if (missing.Count > 0)
            throw new LabException("missing: " + string.Join("; ", missing) + ". scripts/setup installs the packages (run it as root)");
        LabKernel kernel = LabKernel.Find()!;
        say($"      root, qemu-system-x86_64, wireguard-go, wg, ip: ok; guest kernel {kernel.Release}");
        if (LabState.Load(dir) is not null || LabNetwork.Exists(ns))
        {
            say($"      a lab is already up in {dir} (namespace {ns}): taking it down first");
            foreach (string line in Down(dir))
                say("      " + line);
        }
        string boot = NativeBinaries.Find(NativeBinaries.Boot, m => say("      " + m));
        string relay = NativeBinaries.Find(NativeBinaries.Relay, m => say("      " + m));
        say($"      stboot {boot}, relay agent {relay}");
        Directory.CreateDirectory(dir);
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var state = new LabState { Directory = dir, Namespace = ns };
        state.Save();
        Done("prerequisites and binaries");

        // 2. Signing root, three signers, trust policy.
        say($"[2/7] signing root and 3 signers in {dir}/keys (trust policy: {LabSigning.Threshold} of 3)");
        var (root, signers) = LabSigning.CreateKeys(Path.Combine(dir, "keys"));
        foreach (var signer in signers.Prepend(root))
            say($"      {signer.Name,-8} {signer.Certificate.CommonName}  key sha256 {signer.Certificate.PublicKeySha256Hex[..16]}…");
        Done("keys");

        // 3. TLS, relay package, signatures, verification.
        say("[3/7] relay OS package: kernel + initramfs with tabula-relay as /init, signed by signer1 and signer2");
        string host = LabNetwork.HostAddress.ToString();
        var now = DateTimeOffset.UtcNow;
        var provisioningTls = DevCertificateAuthority.Init(Path.Combine(dir, "provisioning", "tls"), [host], now, TimeSpan.FromDays(30), TimeSpan.FromDays(30), force: true);
        var fleetTls = DevCertificateAuthority.Init(Path.Combine(dir, "fleet", "tls"), [host], now, TimeSpan.FromDays(30), TimeSpan.FromDays(30), force: true,
            caName: "Tabula fleet CA");
        string fleetUrl = $"https://{host}:{FleetPort}";
        string provisioningUrl = $"https://{host}:{ProvisioningPort}";
        string packages = Path.Combine(dir, "packages");
        Directory.CreateDirectory(packages);
        byte[] archive;
        using (var zip = new MemoryStream())
        {
            var image = RelayImage.Write(new RelayImageInputs(relay, kernel.Release, fleetUrl, fleetTls.CaCertificate, RelayImageInputs.DefaultModules)
            {
                Kernel = kernel.KernelPath, Label = "Tabula lab relay",
            }, zip);
            archive = zip.ToArray();
            say($"      {archive.Length / 1e6:0.0} MB (kernel {image.KernelBytes / 1e6:0.0} MB, initramfs {image.InitramfsBytes / 1e6:0.0} MB, " +
                $"{image.ModuleLoadOrder.Count} modules for WireGuard and virtio-net); pins the fleet CA for {fleetUrl}");
        }
        byte[] descriptor = LabSigning.Sign(archive, [signers[0], signers[1]]);
        File.WriteAllBytes(Path.Combine(packages, "relay.zip"), archive);
        File.WriteAllBytes(Path.Combine(packages, "relay.json"), descriptor);
        var verdict = LabSigning.Verify(descriptor, archive, root);
        if (!verdict.Accepted)
            throw new LabException($"the lab's own package does not verify: {verdict.Summary}");
        say($"      verified: {verdict.Summary}; sha256 {verdict.ArchiveSha256}");
        Done("package");

        // 4. Namespace, servers, forwarder.
        say($"[4/7] network namespace {ns}: bridge {LabNetwork.Bridge} {host}/24, {options.Relays} tap(s); no route out, no NAT");
        LabNetwork.Create(ns, options.Relays);
        string logs = Path.Combine(dir, "logs");
        Directory.CreateDirectory(logs);

        string provisioningTrust = LabSigning.WriteTrustPolicy(Path.Combine(dir, "provisioning", "trust"), root, null);
        string store = Path.Combine(dir, "provisioning", "store");
        var core = new ProvisioningCore(new FileStore(store), TrustPolicyVerifier.FromDirectory(provisioningTrust), TimeProvider.System,
            new ProvisioningLimits(), publicBaseUrl: null);
        var published = await core.PublishAsync(descriptor, new MemoryStream(archive), "stable", "lab", ct);
        string provisioningConfig = Path.Combine(dir, "provisioning", "prov.json");
        File.WriteAllText(provisioningConfig, JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["Listen"] = provisioningUrl, ["StoreDirectory"] = store, ["TrustPolicyDirectory"] = provisioningTrust,
            ["Tls"] = new Dictionary<string, string> { ["CertificatePath"] = provisioningTls.ServerCertificate, ["KeyPath"] = provisioningTls.ServerKey },
        }, LabConfigJson.Default.DictionaryStringObject));
        StartServer(state, "provisioning", options.Tabula, ["provisioning", "serve", "--config", provisioningConfig], provisioningConfig, logs, null);
        await WaitListeningAsync(ns, new IPEndPoint(LabNetwork.HostAddress, ProvisioningPort), "provisioning server", Path.Combine(logs, "provisioning.log"), ct);
        say($"      provisioning server {provisioningUrl} (log {logs}/provisioning.log); package {published.Package.ArchiveSha256[..16]}… published to `stable`");

        string password = Convert.ToBase64String(RandomNumberGenerator.GetBytes(12)).Replace('/', 'x').Replace('+', 'y');
        string database = "sqlite:" + Path.Combine(dir, "fleet", "fleet.db");
        var staffEnvironment = new Dictionary<string, string> { ["TABULA_FLEET_PASSWORD"] = password };
        string created = HostProcess.Run([.. options.Tabula, "fleet", "staff", "create", "--db", database, "--username", StaffUsername, "--role", "admin",
            "--api-token", "lab", "--json"], environment: staffEnvironment);
        string token = JsonDocument.Parse(created).RootElement.GetProperty("api_token").GetString()
                       ?? throw new LabException("fleet staff create printed no API token");
        string tokenFile = Path.Combine(dir, "fleet", "admin.token");
        File.WriteAllText(tokenFile, token + "\n");
        File.SetUnixFileMode(tokenFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        StartServer(state, "fleet", options.Tabula, ["fleet", "serve", "--db", database, "--urls", fleetUrl,
            "--tls-cert", fleetTls.ServerCertificate, "--tls-key", fleetTls.ServerKey], database, logs, null);
        await WaitListeningAsync(ns, new IPEndPoint(LabNetwork.HostAddress, FleetPort), "fleet controller", Path.Combine(logs, "fleet.log"), ct);
        say($"      fleet controller {fleetUrl} on SQLite (log {logs}/fleet.log); staff {StaffUsername} created offline");

        int port = FreeLoopbackPort();
        var forward = HostProcess.StartDetached([.. options.Tabula, "lab", "forward", "--netns", ns, "--listen", $"127.0.0.1:{port}", "--to", $"{host}:{FleetPort}"],
            Path.Combine(logs, "forward.log"), dir);
        state.Add(new LabProcess("forwarder", forward, "--netns " + ns + " "));
        await WaitAsync(() => CanConnectLoopback(port), TimeSpan.FromSeconds(30), "the dashboard forwarder", Path.Combine(logs, "forward.log"), ct);
        string server = $"https://127.0.0.1:{port}";
        say($"      dashboard {server}/dashboard → {fleetUrl} (loopback forwarder, log {logs}/forward.log)");
        Done("servers");

        // 5. stboot images and machines.
        using var staff = Client(server, fleetTls.CaCertificate, token, "Bearer");
        var trust = LabSigning.WriteTrustPolicy(Path.Combine(dir, "stboot", "trust"), root, File.ReadAllText(provisioningTls.CaCertificate));
        var machines = new List<LabMachine>();
        try
        {
            return await BootAndDeployAsync();
        }
        finally
        {
            foreach (var machine in machines)
                machine.Dispose();
        }

        async Task<LabSummary> BootAndDeployAsync()
        {
            for (int i = 0; i < options.Relays; i++)
            {
                string name = $"relay-{i + 1}";
                string machineDir = Path.Combine(dir, "machines", name);
                Directory.CreateDirectory(machineDir);
                string enrollment = (await PostAsync(staff, "/api/v1/enrollment-tokens", new NameRequest("lab " + name), FleetJson.Default.NameRequest,
                    FleetJson.Default.TokenResponse, ct)).Token;
                byte[] identity = Ed25519.NewPrivateKey();
                string hostConfig = Path.Combine(machineDir, "host_configuration.json");
                File.WriteAllText(hostConfig, $$"""
                    {"network_mode": "static", "host_ip": "{{LabNetwork.RelayAddress(i)}}/24", "gateway": "{{host}}",
                     "network_interfaces": [{"interface_name": "eth0", "mac_address": "{{LabNetwork.RelayMac(i)}}"}],
                     "ospkg_pointer": "{{provisioningUrl}}/channels/stable.json",
                     "tabula_relay": {"identity_key": "{{Convert.ToBase64String(identity)}}", "enrollment_token": "{{enrollment}}"} }
                    """);
                CryptographicOperations.ZeroMemory(identity);
                string initramfs = Path.Combine(machineDir, "stboot.cpio.gz");
                using (var file = File.Create(initramfs))
                    StbootImage.Write(new StbootImageInputs(boot, trust, hostConfig, kernel.Release, ["virtio_net", "virtio_pci"]), file);
                var machine = LabMachine.Start(name, ns, machineDir, kernel, initramfs, LabNetwork.Tap(i), LabNetwork.RelayMac(i));
                state.Add(new LabProcess("qemu " + name, machine.Pid, machine.ConsoleLog));
                machines.Add(machine);
                say($"[5/7] {name}: stboot image {new FileInfo(initramfs).Length / 1e6:0.0} MB ({LabNetwork.RelayAddress(i)}, {LabNetwork.RelayMac(i)}, " +
                    $"identity key, enrollment token); QEMU pid {machine.Pid} (TCG, 1 GiB), console {machine.ConsoleLog}");
            }
            say("      each machine: stboot → network → fetch → verify (2 of 3) → kexec into RAM → tabula-relay enrolls (minutes under TCG)");
            var enrolled = new List<(LabMachine Machine, string Id, string Fingerprint, TimeSpan KexecAt, TimeSpan EnrolledAt)>();
            foreach (var machine in machines)
            {
                var kexec = await WaitWithProgressAsync(machine, "tabula-boot: kexec ", "stboot", options, ct);
                await WaitWithProgressAsync(machine, "tabula-boot: timeline", "stboot's timeline", options, ct);   // printed as it hands over
                say($"      {machine.Name}: stboot verified and kexec'd at {kexec.At.TotalSeconds:0}s ({Timeline(machine.StbootTimeline())})");
                var line = await WaitWithProgressAsync(machine, "relay: stage=enroll machine=", "the relay agent to enroll", options, ct);
                var match = EnrollLine().Match(line.Line);
                if (!match.Success)
                    throw new LabException($"{machine.Name}: unexpected enrollment line: {line.Line}");
                enrolled.Add((machine, match.Groups[1].Value, match.Groups[2].Value, kexec.At, line.At));
                say($"      {machine.Name}: enrolled at {line.At.TotalSeconds:0}s as {match.Groups[1].Value}, fingerprint {match.Groups[2].Value}, state {match.Groups[3].Value}");
            }
            Done("boot and enroll");

            // 6. Staff provision and deploy (the CLI verbs, printed), the demo customer.
            say("[6/7] staff deploy, as an operator would type it (the token is in " + tokenFile + "):");
            var staffCli = new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = token };
            var deployTimes = new Dictionary<string, TimeSpan>();
            for (int i = 0; i < enrolled.Count; i++)
            {
                var (machine, id, _, _, _) = enrolled[i];
                string[] remote = ["--server", server, "--ca", fleetTls.CaCertificate];
                string[] provision = ["fleet", "machines", "provision", id, "--hostname", $"lab-wg-{i + 1:000}", "--country-code", "se", "--country", "Sweden",
                    "--city-code", "lab", "--city", "Lab", "--provider", "tabula-lab", "--owned", "--ipv4-in", LabNetwork.RelayAddress(i).ToString(),
                    "--port", WireguardPort.ToString(CultureInfo.InvariantCulture), "--reason", "lab up", .. remote];
                string[] deploy = ["fleet", "machines", "deploy", id, "--reason", "lab up", .. remote];
                TimeSpan deployedAt = TimeSpan.Zero;
                foreach (string[] command in new[] { provision, deploy })
                {
                    deployedAt = machine.Elapsed;
                    say("      $ TABULA_FLEET_TOKEN=$(cat " + tokenFile + ") tabula " + string.Join(' ', command.Select(Quote)));
                    var clock = Stopwatch.StartNew();
                    string output = HostProcess.Run([.. options.Tabula, .. command], environment: staffCli).Trim();
                    say($"        {output} ({clock.ElapsedMilliseconds} ms)");
                }
                var serving = await WaitWithProgressAsync(machine, "relay: stage=serve ok", "the relay to serve", options, ct);
                deployTimes[machine.Name] = serving.At - deployedAt;
                say($"      {machine.Name}: serving {(serving.At - deployedAt).TotalSeconds:0.0}s after deploy: {serving.Line.Trim()}");
            }

            using var anonymous = Client(server, fleetTls.CaCertificate, null, null);
            var account = await PostAsync<object, AccountView>(anonymous, "/app/v1/accounts", null, null, FleetJson.Default.AccountView, ct);
            using var customer = Client(server, fleetTls.CaCertificate, account.Number, "Token");
            string wireguardDir = Path.Combine(dir, "wireguard");
            Directory.CreateDirectory(wireguardDir);
            string clientPrivate = HostProcess.Run(["wg", "genkey"]).Trim();
            string clientPublic = HostProcess.Run(["wg", "pubkey"], clientPrivate + "\n").Trim();
            string keyFile = Path.Combine(wireguardDir, "client.key");
            File.WriteAllText(keyFile, clientPrivate + "\n");
            File.SetUnixFileMode(keyFile, UnixFileMode.UserRead | UnixFileMode.UserWrite);
            var addedAt = machines.ToDictionary(m => m.Name, m => m.Elapsed);
            var device = await PostAsync(customer, "/app/v1/devices", new AddDeviceRequest(clientPublic), FleetJson.Default.AddDeviceRequest, FleetJson.Default.DeviceView, ct);
            say($"      demo customer: account created, one device (its WireGuard key generated here) at revision {device.Revision}");
            Done("deploy");

            // 7. WireGuard clients and pings through each relay.
            say($"[7/7] the customer's WireGuard client (wireguard-go + wg in {ns}) to each relay; ping {TunnelGateway} through the tunnel");
            var relays = new List<RelaySummary>();
            for (int i = 0; i < enrolled.Count; i++)
            {
                var (machine, id, fingerprint, kexecAt, enrolledAt) = enrolled[i];
                await WaitWithProgressAsync(machine, $"relay: stage=sync add revision={device.Revision}", "the device to reach the relay", options, ct);
                var view = await staff.GetFromJsonAsync($"/api/v1/machines/{id}", FleetJson.Default.MachineView, ct)
                           ?? throw new LabException($"the controller does not know machine {id}");
                string iface = WireguardInterface(dir, i);
                int pid = HostProcess.StartDetached(LabNetwork.Exec(ns, ["wireguard-go", "-f", iface]), Path.Combine(logs, iface + ".log"), dir);
                state.Add(new LabProcess("wireguard-go " + iface, pid, iface));
                await WaitAsync(() => File.Exists($"/var/run/wireguard/{iface}.sock"), TimeSpan.FromSeconds(30), "wireguard-go " + iface, Path.Combine(logs, iface + ".log"), ct);
                string endpoint = $"{LabNetwork.RelayAddress(i)}:{WireguardPort}";
                HostProcess.Run(LabNetwork.Exec(ns, ["wg", "set", iface, "private-key", keyFile, "peer", view.WireguardPublicKey, "endpoint", endpoint,
                    "allowed-ips", TunnelGateway + "/32"]));
                LabNetwork.Ip(ns, "addr", "add", device.Ipv4Address + "/32", "dev", iface);
                LabNetwork.Ip(ns, "link", "set", iface, "up");
                LabNetwork.Ip(ns, "route", "add", TunnelGateway + "/32", "dev", iface, "metric", (100 + i).ToString(CultureInfo.InvariantCulture));
                bool ping = false;
                for (int attempt = 0; attempt < 20 && !ping; attempt++)
                    ping = HostProcess.TryRun(LabNetwork.Exec(ns, ["ping", "-c", "1", "-W", "2", "-I", iface, TunnelGateway])).Stdout.Contains("1 received", StringComparison.Ordinal);
                var firstHandshake = machine.Elapsed - addedAt[machine.Name];
                string handshakes = HostProcess.Run(LabNetwork.Exec(ns, ["wg", "show", iface, "latest-handshakes"]));
                bool handshake = Regex.IsMatch(handshakes, Regex.Escape(view.WireguardPublicKey) + @"\s+[1-9][0-9]*");
                say($"      {machine.Name}: {iface} → {endpoint}: handshake {(handshake ? "done" : "NONE")}, ping {TunnelGateway} {(ping ? "answered" : "NOT answered")} " +
                    $"({firstHandshake.TotalSeconds:0.0}s after the device was added)");
                relays.Add(new RelaySummary(machine.Name, id, LabNetwork.RelayAddress(i).ToString(), fingerprint, view.State, handshake, ping, iface, machine.ConsoleLog,
                    machine.StbootTimeline(), new RelayTimeline(Round(kexecAt), Round(enrolledAt), Round(deployTimes[machine.Name]), Round(firstHandshake))));
            }
            Done("tunnel");

            var summary = new LabSummary(dir, ns, verdict.ArchiveSha256, archive.Length, $"{verdict.Valid} of {verdict.Found} valid, {verdict.Required} required",
                server + "/dashboard", StaffUsername, password, tokenFile, fleetTls.CaCertificate, relays, steps, Round(total.Elapsed));
            state.Summary = summary;
            state.Status = "up";
            state.Save();
            return summary;
        }
    }

    static double Round(TimeSpan t) => Math.Round(t.TotalSeconds, 1);

    static string Quote(string argument) => argument.Length == 0 || argument.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$')
        ? "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : argument;

    /// <summary>stboot's timeline as "network=…ms fetch=…ms …".</summary>
    public static string Timeline(IReadOnlyDictionary<string, long> stboot) => string.Join(' ', stboot.Select(s => $"{s.Key}={s.Value}ms"));

    [GeneratedRegex("machine=([0-9a-f]{32}) fingerprint=([0-9a-f-]+) state=(\\w+)")]
    private static partial Regex EnrollLine();

    static void StartServer(LabState state, string name, IReadOnlyList<string> tabula, string[] arguments, string marker, string logs,
        IDictionary<string, string>? environment)
    {
        int pid = HostProcess.StartDetached(LabNetwork.Exec(state.Namespace, [.. tabula, .. arguments]), Path.Combine(logs, name + ".log"), state.Directory, environment);
        state.Add(new LabProcess(name, pid, marker));
    }

    static Task WaitListeningAsync(string ns, IPEndPoint endpoint, string what, string log, CancellationToken ct) =>
        WaitAsync(() => LabNetwork.CanConnect(ns, endpoint), TimeSpan.FromSeconds(90), what, log, ct);

    static async Task WaitAsync(Func<bool> ready, TimeSpan timeout, string what, string log, CancellationToken ct)
    {
        var clock = Stopwatch.StartNew();
        while (!ready())
        {
            if (clock.Elapsed > timeout)
            {
                string tail = File.Exists(log) ? string.Join('\n', File.ReadAllLines(log).TakeLast(15)) : "(no log)";
                throw new LabException($"{what} not ready within {timeout.TotalSeconds:0}s; log {log}:\n{tail}");
            }
            await Task.Delay(200, ct);
        }
    }

    static async Task<(TimeSpan At, string Line)> WaitWithProgressAsync(LabMachine machine, string marker, string what, LabOptions options, CancellationToken ct)
    {
        var wait = machine.WaitForAsync(marker, options.StageTimeout, ct);
        var clock = Stopwatch.StartNew();
        while (await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(30), ct)) != wait)
        {
            string last = machine.LastLine.Trim();
            options.Progress($"      {machine.Name}: waiting for {what} ({clock.Elapsed.TotalSeconds:0}s); console: {(last.Length > 110 ? last[..110] + "…" : last)}");
        }
        return await wait;
    }

    static int FreeLoopbackPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    static bool CanConnectLoopback(int port)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try { probe.Connect(IPAddress.Loopback, port); return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>An HTTPS client to the controller (through the forwarder) that trusts only the lab's fleet CA.</summary>
    static HttpClient Client(string server, string caFile, string? token, string? scheme)
    {
        var pinned = new PinnedTlsRoots(Certificate.ParsePemBundle(File.ReadAllBytes(caFile)), TimeProvider.System);
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            SslOptions = { RemoteCertificateValidationCallback = (_, c, chain, e) => pinned.Validate(c, chain, e) },
        };
        var client = new HttpClient(handler) { BaseAddress = new Uri(server), Timeout = TimeSpan.FromSeconds(30) };
        if (token is not null)
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue(scheme!, token);
        return client;
    }

    static async Task<TResult> PostAsync<TBody, TResult>(HttpClient client, string path, TBody? body,
        System.Text.Json.Serialization.Metadata.JsonTypeInfo<TBody>? bodyInfo, System.Text.Json.Serialization.Metadata.JsonTypeInfo<TResult> reply,
        CancellationToken ct)
    {
        using var content = body is null || bodyInfo is null ? null : JsonContent.Create(body, bodyInfo);
        using var response = await client.PostAsync(path, content, ct);
        string text = await response.Content.ReadAsStringAsync(ct);
        if (!response.IsSuccessStatusCode)
            throw new LabException($"POST {path}: HTTP {(int)response.StatusCode} {text}");
        return JsonSerializer.Deserialize(text, reply) ?? throw new LabException($"POST {path}: empty answer");
    }
}

/// <summary>JSON for the provisioning server's config file.</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, object>))]
[System.Text.Json.Serialization.JsonSerializable(typeof(Dictionary<string, string>))]
internal sealed partial class LabConfigJson : System.Text.Json.Serialization.JsonSerializerContext;
