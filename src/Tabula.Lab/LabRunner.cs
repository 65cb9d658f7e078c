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
using Tabula.Images.Relay;
using Tabula.Packaging;
using Tabula.Tls;

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

    /// <summary>The relay package's kernel command line (bench/relay-init-on-alloc.sh compares two).</summary>
    public string RelayCmdline { get; init; } = Images.Relay.RelayImageInputs.DefaultCmdline;

    /// <summary>Each relay gets its own swtpm as TPM 2.0 (EK certificate by the lab's manufacturer CA); stboot's trust policy
    /// requires measured boot and the controller requires attestation (issue 19). False (<c>--tpm none</c>): no TPM, measured boot
    /// and attestation optional.</summary>
    public bool Tpm { get; init; } = true;

    /// <summary>How the relays boot stboot: <see cref="LabFirmware.Bios"/> (the default) or <see cref="LabFirmware.Uefi"/>.</summary>
    public string Firmware { get; init; } = LabFirmware.Bios;

    /// <summary>UEFI Secure Boot with the lab's own keys (needs <see cref="LabFirmware.Uefi"/>).</summary>
    public bool SecureBoot { get; init; }
}

/// <summary>
/// `tabula lab up|down`: the whole disk-less fleet on one machine. <see cref="UpAsync"/> runs the steps below and returns
/// the summary; every background process, the namespace and every file are recorded in DIR/state.json so that
/// <see cref="Down"/> removes them (also after a failed `up`). docs/lab.md describes the design.
/// <list type="number">
/// <item>prerequisites (root, QEMU, guest kernel, wireguard-go, wg, ip), the static tabula-boot and tabula-relay;</item>
/// <item>signing root and three signers, trust policy threshold 2;</item>
/// <item>dev TLS CAs, the relay OS package, signed by two signers, verified;</item>
/// <item>namespace, bridge and taps, the lab internet (<see cref="LabInternet"/>: public segment, echo host, customer
/// namespaces); provisioning server (package published to `stable`) and fleet controller inside it; the loopback forwarder;</item>
/// <item>per relay an stboot image (static address, MAC, identity key, enrollment token) and a QEMU machine: stboot
/// fetches, verifies and kexecs the package; the agent enrolls;</item>
/// <item>staff provision and deploy (through the CLI verbs, printed); a demo customer device;</item>
/// <item>per relay a WireGuard client (wireguard-go + wg) in a customer namespace that pings 10.64.0.1 and fetches the echo
/// host's /ip through the tunnel; the summary.</item>
/// </list>
/// </summary>
public static partial class LabRunner
{
    /// <summary>The default lab directory.</summary>
    public const string DefaultDirectory = "/var/tmp/tabula-lab";

    internal const int ProvisioningPort = 8443, FleetPort = 9443, WireguardPort = 51820;
    internal const string StaffUsername = "admin";
    internal const string TunnelGateway = "10.64.0.1";

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
    public static Task<LabSummary> UpAsync(LabOptions options, CancellationToken ct)
    {
        if (options.Relays is < 1 or > 8)
            throw new LabException($"--relays is 1 to 8 (each relay is a 1 GiB QEMU machine under software emulation), got {options.Relays}");
        LabFirmware.Check(options.Firmware, options.SecureBoot);
        return new LabUp(options).RunAsync(ct);
    }

    /// <summary>`lab upgrade`: a new release, signed, allowed, published to `stable`, rolled one relay at a time.</summary>
    public static Task<LabUpgradeSummary> UpgradeAsync(LabActionOptions options, CancellationToken ct) => new LabUpgrade(options).RunAsync(ct);

    /// <summary>The rounds of `lab attack`, in the order they run (scripts match on these names).</summary>
    public static IReadOnlyList<string> AttackNames { get; } = ["tampered-package", "one-signer", "rogue-signer", "rollback", "replayed-ticket"];

    /// <summary>`lab attack`: a seized provisioning server (and, for replayed-ticket, someone holding the controller's TLS
    /// key) attacks <paramref name="relay"/> once per stboot round, which refuses each; then the genuine package again, which
    /// it boots. <paramref name="only"/> runs a subset of <see cref="AttackNames"/> (in their order); null runs them all.</summary>
    public static Task<LabAttackSummary> AttackAsync(LabActionOptions options, string relay, CancellationToken ct, IReadOnlyCollection<string>? only = null)
    {
        var unknown = only?.Where(name => !AttackNames.Contains(name)).ToList() ?? [];
        if (unknown.Count > 0)
            throw new LabException($"unknown attack {string.Join(", ", unknown)}; the rounds are {string.Join(", ", AttackNames)}");
        var rounds = only is null ? AttackNames : AttackNames.Where(only.Contains).ToList();
        if (rounds.Count == 0)
            throw new LabException("--only names no attack");
        if (rounds[0] == "replayed-ticket")
            throw new LabException("replayed-ticket replays a ticket recorded in an earlier round: run it after at least one other round " +
                                   "(e.g. --only rollback,replayed-ticket)");
        return new LabAttack(options, relay, rounds).RunAsync(ct);
    }

    internal static double Round(TimeSpan t) => Math.Round(t.TotalSeconds, 1);

    internal static string Quote(string argument) => argument.Length == 0 || argument.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'' or '$')
        ? "'" + argument.Replace("'", "'\\''", StringComparison.Ordinal) + "'" : argument;

    /// <summary>stboot's timeline as "network=…ms fetch=…ms …".</summary>
    public static string Timeline(IReadOnlyDictionary<string, long> stboot) => string.Join(' ', stboot.Select(s => $"{s.Key}={s.Value}ms"));

    internal static void StartServer(LabState state, string name, IReadOnlyList<string> tabula, string[] arguments, string marker, string logs,
        IDictionary<string, string>? environment)
    {
        int pid = HostProcess.StartDetached(LabNetwork.Exec(state.Namespace, [.. tabula, .. arguments]), Path.Combine(logs, name + ".log"), state.Directory, environment);
        state.Add(new LabProcess(name, pid, marker));
    }

    internal static Task WaitListeningAsync(string ns, IPEndPoint endpoint, string what, string log, CancellationToken ct) =>
        WaitAsync(() => LabNetwork.CanConnect(ns, endpoint), TimeSpan.FromSeconds(90), what, log, ct);

    internal static async Task WaitAsync(Func<bool> ready, TimeSpan timeout, string what, string log, CancellationToken ct)
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

    internal static Task<(TimeSpan At, string Line)> WaitWithProgressAsync(LabMachine machine, ConsoleMarker marker, string what, LabOptions options, CancellationToken ct) =>
        WaitWithProgressAsync(machine, marker, what, options.Progress, options.StageTimeout, ct);

    /// <summary>Waits for the first console line with <paramref name="marker"/>, saying every 30 s
    /// what it waits for and the console's last line.</summary>
    internal static async Task<(TimeSpan At, string Line)> WaitWithProgressAsync(LabMachine machine, ConsoleMarker marker, string what, Action<string> progress,
        TimeSpan timeout, CancellationToken ct, TimeSpan after = default)
    {
        var wait = machine.WaitForAsync(marker, timeout, ct, after);
        var clock = Stopwatch.StartNew();
        while (await Task.WhenAny(wait, Task.Delay(TimeSpan.FromSeconds(30), ct)) != wait)
        {
            string last = machine.LastLine.Trim();
            progress($"      {machine.Name}: waiting for {what} ({clock.Elapsed.TotalSeconds:0}s); console: {(last.Length > 110 ? last[..110] + "…" : last)}");
        }
        return await wait;
    }

    /// <summary>
    /// Follows a relay's boot on its console: stboot's verified digest, its kexec and timeline, then the agent's enrollment
    /// (machine id, fingerprint, state), saying each as it arrives.
    /// </summary>
    /// <paramref name="after"/>: only lines from then on count (a machine rebooted inside its QEMU writes every boot to one console).
    internal static async Task<RelayBoot> WaitBootAsync(LabMachine machine, Action<string> say, TimeSpan timeout, CancellationToken ct,
        TimeSpan after = default)
    {
        await WaitWithProgressAsync(machine, ConsoleMarker.Boot("verified"), "stboot to verify the package", say, timeout, ct, after);
        var kexec = await WaitWithProgressAsync(machine, ConsoleMarker.Boot("kexec"), "stboot to kexec", say, timeout, ct, after);
        // The package kexec'd is the last one verified before the kexec: an earlier round may have verified a package whose
        // signatures were fine and then refused it (freshness), as `lab attack`'s rollback round does.
        var verified = machine.FindAll(ConsoleMarker.Boot("verified")).Last(l => l.At >= after && l.At <= kexec.At);
        string sha = ConsoleLine.TryParse(verified.Line)?.Field("ospkg_sha256") ?? "";
        await WaitWithProgressAsync(machine, ConsoleMarker.Boot("timeline"), "stboot's timeline", say, timeout, ct, after);   // printed as it hands over
        say($"      {machine.Name}: stboot verified {sha[..Math.Min(16, sha.Length)]}… and kexec'd at {kexec.At.TotalSeconds:0.0}s ({Timeline(machine.StbootTimeline(after))})");
        var enroll = await WaitWithProgressAsync(machine, ConsoleMarker.Relay("enroll"), "the relay agent to enroll", say, timeout, ct, after);
        var line = ConsoleLine.TryParse(enroll.Line);
        if (line?.Field("machine") is not { Length: 32 } id || line.Field("fingerprint") is not { } fingerprint || line.Field("state") is not { } state)
            throw new LabException($"{machine.Name}: unexpected enrollment line: {enroll.Line}");
        say($"      {machine.Name}: enrolled at {enroll.At.TotalSeconds:0.0}s as {id}, fingerprint {fingerprint}, state {state}");
        return new RelayBoot(machine, sha, kexec.At, enroll.At, id, fingerprint, state);
    }

    /// <summary>Runs a `tabula fleet …` staff verb with the admin token, printing it as an operator types it and its answer.</summary>
    internal static string StaffCli(Action<string> say, IReadOnlyList<string> tabula, string token, string tokenFile, IReadOnlyList<string> command)
    {
        say($"      $ TABULA_FLEET_TOKEN=$(cat {tokenFile}) tabula {string.Join(' ', command.Select(Quote))}");
        var clock = Stopwatch.StartNew();
        string output = HostProcess.Run([.. tabula, .. command], environment: new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = token }).Trim();
        say($"        {(output.Length == 0 ? "ok" : output)} ({clock.ElapsedMilliseconds} ms)");
        return output;
    }

    /// <summary>The lab's machine class: every relay package carries it in its signed manifest (issue 16).</summary>
    internal const string MachineClass = "relay";

    /// <summary>The lab's relay OS package (deterministic: the label is what makes a release, or an attacker's build,
    /// differ): tabula-relay as /init, the guest kernel, the fleet URL on the lab bridge and the pinned fleet CA; release
    /// <paramref name="release"/> (the lab's first is 1; `lab upgrade` counts up; 0 writes none, as packages built before
    /// releases existed) and class <see cref="MachineClass"/>, both in the signed manifest where ST tools ignore them.</summary>
    internal static (byte[] Archive, RelayImageSummary Image) BuildRelayArchive(string relayBinary, LabKernel kernel,
        string fleetCa, string label, long release, string cmdline = RelayImageInputs.DefaultCmdline)
    {
        using var zip = new MemoryStream();
        var image = RelayImage.Write(new RelayImageInputs(relayBinary, kernel.Release,
            $"https://{LabNetwork.HostAddress}:{FleetPort}", fleetCa, RelayImageInputs.DefaultModules)
        {
            Kernel = kernel.KernelPath, Label = label, Cmdline = cmdline, Release = release, MachineClass = MachineClass,
        }, zip);
        return (zip.ToArray(), image);
    }

    /// <summary>The provisioning server's staff token for `tabula publish --token-file` (made by `up`).</summary>
    internal static string ProvisioningTokenFile(string directory) => Path.Combine(directory, "provisioning", "staff.token");

    /// <summary>Writes a token file readable by its owner only.</summary>
    internal static void WriteSecret(string path, string secret)
    {
        using var file = new StreamWriter(new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }));
        file.Write(secret + "\n");
    }

    internal static int FreeLoopbackPort()
    {
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        int port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }

    internal static bool CanConnectLoopback(int port)
    {
        using var probe = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try { probe.Connect(IPAddress.Loopback, port); return true; }
        catch (SocketException) { return false; }
    }

    /// <summary>An HTTPS client to the controller (through the forwarder) that trusts only the lab's fleet CA.</summary>
    internal static HttpClient Client(string server, string caFile, string? token, string? scheme)
    {
        return PinnedHttp.Client(new Uri(server), PinnedTlsRoots.LoadPemFile(caFile, TimeProvider.System), TimeSpan.FromSeconds(30),
            token is null ? null : new AuthenticationHeaderValue(scheme!, token));
    }

    internal static async Task<TResult> PostAsync<TBody, TResult>(HttpClient client, string path, TBody? body,
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
