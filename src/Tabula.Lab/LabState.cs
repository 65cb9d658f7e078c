using System.Text.Json;
using System.Text.Json.Serialization;

namespace Tabula.Lab;

/// <summary>A background process the lab started: what it is, its pid, and a string its command line must contain
/// for `lab down` to stop it (so a recycled pid is never killed).</summary>
public sealed record LabProcess(string Name, int Pid, string Marker);

/// <summary>
/// Everything `lab down` needs, in DIR/state.json, written after every process start (so a failed or interrupted
/// `up` can be torn down too): the namespace, the processes, the WireGuard interfaces.
/// </summary>
public sealed class LabState
{
    /// <summary>The state file's name inside the lab directory.</summary>
    public const string FileName = "state.json";

    /// <summary>The lab directory.</summary>
    public required string Directory { get; init; }

    /// <summary>The network namespace.</summary>
    public required string Namespace { get; init; }

    /// <summary>"starting" while `up` runs, "up" once the summary is printed.</summary>
    public string Status { get; set; } = "starting";

    /// <summary>The relay package release on `stable`: 1 after `up`, one more after each `upgrade`.</summary>
    public int Release { get; set; } = 1;

    /// <summary>How the relays boot: <see cref="LabFirmware.Bios"/> or <see cref="LabFirmware.Uefi"/> (`lab attack` powers them on the same way).</summary>
    public string Firmware { get; set; } = LabFirmware.Bios;

    /// <summary>UEFI Secure Boot with the lab's keys (DIR/secureboot): `lab upgrade` signs each new release's kernel with its db key.</summary>
    public bool SecureBoot { get; set; }

    /// <summary>Background processes in start order.</summary>
    public List<LabProcess> Processes { get; init; } = [];

    /// <summary>The summary of the last successful `up`.</summary>
    public LabSummary? Summary { get; set; }

    /// <summary>Reads DIR/state.json, or null when there is none (or it is unreadable).</summary>
    public static LabState? Load(string directory)
    {
        string path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
            return null;
        try { return JsonSerializer.Deserialize(File.ReadAllBytes(path), LabJson.Default.LabState); }
        catch (JsonException) { return null; }
    }

    /// <summary>Writes DIR/state.json atomically (mode 0600: it holds the staff password and token).</summary>
    public void Save()
    {
        string path = Path.Combine(Directory, FileName);
        string temporary = path + ".tmp";
        using (var file = new FileStream(temporary, new FileStreamOptions
               {
                   Mode = FileMode.Create, Access = FileAccess.Write,
                   UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
               }))
            JsonSerializer.Serialize(file, this, LabJson.Default.LabState);
        File.Move(temporary, path, overwrite: true);
    }

    /// <summary>Records a started process and saves.</summary>
    public void Add(LabProcess process)
    {
        Processes.Add(process);
        Save();
    }
}

/// <summary>What `lab up` printed at the end (and `--json` prints as is).</summary>
/// <param name="Directory">The lab directory (keys, packages, images, logs, state).</param>
/// <param name="Namespace">The network namespace the servers and QEMU run in (the lab internet's router; the WireGuard
/// client runs in <see cref="LabSummary.ClientNamespace"/>).</param>
/// <param name="PackageSha256">SHA-256 of the signed relay OS package archive.</param>
/// <param name="PackageBytes">Its size.</param>
/// <param name="PackageSigners">Signers whose signatures verified, of the threshold.</param>
/// <param name="DashboardUrl">The fleet dashboard through the loopback forwarder.</param>
/// <param name="StaffUsername">The lab's admin login.</param>
/// <param name="StaffPassword">Its password (a lab: printed on purpose).</param>
/// <param name="StaffTokenFile">A file holding the admin's API token (for `tabula fleet …` with --token).</param>
/// <param name="FleetCa">The dev CA the controller's certificate chains to (for --ca, or to trust in a browser).</param>
/// <param name="Relays">One entry per relay machine.</param>
/// <param name="Steps">How long each step of `up` took.</param>
/// <param name="TookSeconds">The whole `up`.</param>
public sealed record LabSummary(string Directory, string Namespace, string PackageSha256, long PackageBytes, string PackageSigners,
    string DashboardUrl, string StaffUsername, string StaffPassword, string StaffTokenFile, string FleetCa,
    IReadOnlyList<RelaySummary> Relays, IReadOnlyList<LabStep> Steps, double TookSeconds)
{
    /// <summary>The customer and staff API through the loopback forwarder (its certificate chains to <see cref="FleetCa"/>).</summary>
    public string? FleetUrl { get; init; }

    /// <summary>The customer namespace the lab's own WireGuard client runs in.</summary>
    public string? ClientNamespace { get; init; }

    /// <summary>The lab internet: customer namespaces, the echo host, the management services relays can reach.</summary>
    public LabInternetSummary? Internet { get; init; }

    /// <summary>The freshness policy baked into every relay's stboot image (issue 16).</summary>
    public LabFreshnessSummary? Freshness { get; init; }

    /// <summary>The OS package signing root (PEM): what a customer's <c>tabula relay attest --signing-root</c> names (issue 19).</summary>
    public string? SigningRoot { get; init; }

    /// <summary>The lab's TPM manufacturer CA (PEM) that issued every relay TPM's EK certificate: the controller's and a customer's
    /// <c>--tpm-roots</c>; null with <c>--tpm none</c>.</summary>
    public string? TpmManufacturerCa { get; init; }

    /// <summary><c>tabula_measured_boot</c> in the stboot images' trust policy: required (each relay has a TPM) or optional
    /// (<c>--tpm none</c>).</summary>
    public string? MeasuredBoot { get; init; }

    /// <summary>The controller's <c>--attestation</c>: required (a relay is put into service only once attested) or optional.</summary>
    public string? AttestationPolicy { get; init; }

    /// <summary>How the relays boot stboot (issue 20): BIOS, or UEFI with or without Secure Boot.</summary>
    public LabFirmwareSummary? Firmware { get; init; }
}

/// <summary>The relays' firmware in the summary (docs/lab.md "Firmware").</summary>
/// <param name="Type">bios (SeaBIOS, -kernel/-initrd, host configuration in the initramfs) or uefi (OVMF boots the stboot UKI
/// from an ESP; host configuration in each relay's STHostConfig EFI variable).</param>
/// <param name="SecureBoot">UEFI Secure Boot with the lab's own PK, KEK and db.</param>
public sealed record LabFirmwareSummary(string Type, bool SecureBoot)
{
    /// <summary>uefi: the OVMF code the relays run (OVMF_CODE_4M.fd, or OVMF_CODE_4M.secboot.fd under Secure Boot).</summary>
    public string? Code { get; init; }

    /// <summary>uefi: the stboot UKI every relay boots (signed with db under Secure Boot).</summary>
    public string? Uki { get; init; }

    /// <summary>uefi: its size in bytes.</summary>
    public long? UkiBytes { get; init; }

    /// <summary>uefi: where each relay's host configuration is (the EFI variable NAME-GUID).</summary>
    public string? HostConfig { get; init; }

    /// <summary>Secure Boot: the folder with the lab's PK, KEK and db (.key, .crt).</summary>
    public string? Keys { get; init; }

    /// <summary>Secure Boot: the relay package's kernel, signed with the db key (kexec_file_load under lockdown takes it).</summary>
    public string? PackageKernel { get; init; }
}

/// <summary>The stboot images' freshness policy in the summary (docs/lab.md, docs/boot.md "Freshness").</summary>
/// <param name="Mode">required: no boot without a valid ticket from the controller.</param>
/// <param name="MinRelease">The floor baked into the images.</param>
/// <param name="MachineClass">The class every package must carry.</param>
/// <param name="TicketUrl">Where stboot asks for its ticket.</param>
/// <param name="TicketRoot">The controller's ticket key (public half, PEM) pinned in the images.</param>
public sealed record LabFreshnessSummary(string Mode, long MinRelease, string MachineClass, string TicketUrl, string TicketRoot);

/// <summary>The lab internet in the summary (docs/lab.md).</summary>
/// <param name="CustomerNamespaces">Two customers' machines on the internet (tests add their own WireGuard clients there).</param>
/// <param name="Echo">The echo host.</param>
/// <param name="PrivateEndpoints">Every management service a relay can reach, HOST:PORT (IPv6 as [addr]:port); none may be
/// reachable through a tunnel.</param>
public sealed record LabInternetSummary(IReadOnlyList<string> CustomerNamespaces, EchoSummary Echo, IReadOnlyList<string> PrivateEndpoints);

/// <summary>The echo host: GET /ip, GET /bytes/N over HTTP, and an authoritative DNS name.</summary>
public sealed record EchoSummary(string Ipv4, string Ipv6, string Name, int HttpPort);

/// <summary>One relay at the end of `up`.</summary>
/// <param name="Name">relay-N, also its hostname in the fleet.</param>
/// <param name="MachineId">The id the controller gave it at enrollment.</param>
/// <param name="Address">Its static address on the lab bridge: its public IPv4, the WireGuard endpoint.</param>
/// <param name="Fingerprint">The fingerprint it showed on its console (staff compare it on the dashboard).</param>
/// <param name="State">Its state in the fleet (deployed).</param>
/// <param name="Handshake">The customer's WireGuard client completed a handshake with it.</param>
/// <param name="Ping">A ping through the tunnel to 10.64.0.1 got an answer.</param>
/// <param name="WireguardInterface">The client interface in the client namespace (`ip netns exec CLIENT_NS wg show IFACE`).</param>
/// <param name="ConsoleLog">The serial console log.</param>
/// <param name="Stboot">stboot's own timeline (stage → milliseconds) from its `tabula-boot: timeline` line.</param>
/// <param name="Timeline">Stages the lab measured.</param>
public sealed record RelaySummary(string Name, string MachineId, string Address, string Fingerprint, string State, bool Handshake, bool Ping,
    string WireguardInterface, string ConsoleLog, IReadOnlyDictionary<string, long> Stboot, RelayTimeline Timeline)
{
    /// <summary>Its public IPv4 on the lab internet (static; also `ipv4_addr_in`).</summary>
    public string? PublicIpv4 { get; init; }

    /// <summary>Its public IPv6 (SLAAC from its MAC; also `ipv6_addr_in`).</summary>
    public string? PublicIpv6 { get; init; }

    /// <summary>What the echo host saw over IPv4 when the lab's client fetched /ip through this relay (null: no egress).</summary>
    public string? EgressIpv4 { get; init; }

    /// <summary>The same over IPv6.</summary>
    public string? EgressIpv6 { get; init; }

    /// <summary>What stboot saw of the platform on its <c>stage:config</c> line (firmware, secure_boot, lockdown, host_config), or null.</summary>
    public RelayPlatform? Platform { get; init; }

    /// <summary>The lab's client ran the real <c>tabula relay attest</c> through this relay's tunnel (issue 19); null without a TPM.</summary>
    public RelayAttestation? Attestation { get; init; }
}

/// <summary>The verdict of one in-tunnel <c>tabula relay attest --json</c> (docs/attestation.md "In the tunnel").</summary>
/// <param name="Verified">Every step passed (the command exited 0).</param>
/// <param name="FailedStep">The first step that failed (ek-certificate … key-binding), "unreachable" when the relay could not be
/// asked (exit 2), null when verified.</param>
/// <param name="PackageSha256">The measured package the customer verified, or null.</param>
/// <param name="Release">The release in the AK certificate the relay presented (what the controller attested), or null.</param>
/// <param name="Seconds">The whole check, end to end: process start, keys, challenge, quote, descriptor fetch, every step.</param>
public sealed record RelayAttestation(bool Verified, string? FailedStep, string? PackageSha256, long? Release, double Seconds)
{
    /// <summary>The failed step's detail, or why the relay could not be asked.</summary>
    public string? Detail { get; init; }

    /// <summary>The quoted SHA-256 PCRs ("12", "13", "14" → hex) as the relay's event log replays to them.</summary>
    public IReadOnlyDictionary<string, string>? Pcrs { get; init; }

    /// <summary>The command as a customer types it.</summary>
    public string? Command { get; init; }
}

/// <summary>The platform as stboot reported it at its config stage.</summary>
/// <param name="Firmware">bios or uefi.</param>
/// <param name="SecureBoot">on or off.</param>
/// <param name="Lockdown">The kernel's lockdown: none, integrity, confidentiality.</param>
/// <param name="HostConfig">Where the host configuration came from: /etc/host_configuration.json or efivar:STHostConfig.</param>
public sealed record RelayPlatform(string? Firmware, string? SecureBoot, string? Lockdown, string? HostConfig);

/// <summary>Times the lab measured for one relay, in seconds.</summary>
/// <param name="KexecAt">QEMU start → stboot's kexec line (power-on, kernel, stboot's whole run).</param>
/// <param name="EnrolledAt">QEMU start → the agent's enrollment line (the relay kernel booted, the agent enrolled).</param>
/// <param name="Deploy">Staff's deploy call → the agent serving (WireGuard up).</param>
/// <param name="FirstHandshake">The device added → the first ping answered through the tunnel (peer sync, handshake, ping).</param>
public sealed record RelayTimeline(double KexecAt, double EnrolledAt, double Deploy, double FirstHandshake)
{
    /// <summary>The time the client takes to connect: its WireGuard interface configured (key, peer, addresses) → the first ping
    /// answered through the tunnel (handshake included), once the relay has the device.</summary>
    public double? Connect { get; init; }
}

/// <summary>One step of `up` and how long it took.</summary>
public sealed record LabStep(string Name, double Seconds);

/// <summary>Source-generated JSON for the lab's state and summary (AOT-safe).</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = true)]
[JsonSerializable(typeof(LabState))]
[JsonSerializable(typeof(LabSummary))]
[JsonSerializable(typeof(LabUpgradeSummary))]
[JsonSerializable(typeof(LabAttackSummary))]
public sealed partial class LabJson : JsonSerializerContext;

/// <summary>What the lab reads of <c>tabula relay attest --json</c> (the CLI's own output type is Tabula.Cli's).</summary>
internal sealed record AttestJson(bool Verified, string? PackageSha256, long? Release, IReadOnlyList<AttestStepJson>? Steps,
    IReadOnlyDictionary<string, string>? Pcrs);

/// <summary>One step of <see cref="AttestJson"/>.</summary>
internal sealed record AttestStepJson(string Name, bool Ok, string Detail);

/// <summary>Source-generated JSON for reading <c>relay attest --json</c>.</summary>
[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower)]
[JsonSerializable(typeof(AttestJson))]
internal sealed partial class LabAttestJson : JsonSerializerContext;
