using Tabula.Fuzz.Targets;

namespace Tabula.Fuzz;

/// <summary>
/// Every fuzz target, one per parser. To add one: a member here, a class in Targets/ with a static
/// <c>bool Fuzz(ReadOnlySpan&lt;byte&gt;)</c>, its line in <see cref="FuzzTargets.Of"/>, seed files in corpus/&lt;member&gt;/, and
/// a test of the same name in Tabula.Fuzz.Tests (FuzzTargetTests.Every_target_has_a_test_and_a_corpus checks the
/// last two).
/// </summary>
public enum FuzzTarget
{
    /// <summary>OS package descriptor JSON (Tabula.Packaging Descriptor).</summary>
    Descriptor,
    /// <summary>manifest.json inside an OS package (Tabula.Packaging Manifest).</summary>
    Manifest,
    /// <summary>OS package zip archive: open, validate, extract (Tabula.Packaging OsPackageArchive).</summary>
    OsPackageArchive,
    /// <summary>One DER X.509 certificate (Tabula.Packaging Certificate).</summary>
    Certificate,
    /// <summary>PEM text: blocks, certificate bundles, PKCS#8 Ed25519 keys (Tabula.Packaging Pem, Ed25519Keys).</summary>
    Pem,
    /// <summary>Host configuration JSON (Tabula.Packaging HostConfig).</summary>
    HostConfig,
    /// <summary>trust_policy.json and legacy security_configuration.json (Tabula.Packaging TrustPolicy).</summary>
    TrustPolicy,
    /// <summary>Sigsum proof text, verified against the test policy when it parses (Tabula.Packaging SigsumProof).</summary>
    SigsumProof,
    /// <summary>Sigsum policy text (Tabula.Packaging SigsumPolicy).</summary>
    SigsumPolicy,
    /// <summary>handover.json, stboot's record for the next OS (Tabula.Packaging HandoverRecord).</summary>
    Handover,
    /// <summary>A DHCPv4 reply datagram (DhcpMessage).</summary>
    DhcpMessage,
    /// <summary>An rtnetlink reply datagram: links and addresses (Tabula.Linux RouteSocket).</summary>
    RouteNetlink,
    /// <summary>A WireGuard generic-netlink WG_CMD_GET_DEVICE reply datagram (KernelGetDecoder).</summary>
    WireGuardNetlink,
    /// <summary>A wireguard-go UAPI get=1 reply (UapiLineReader, UapiGetParser).</summary>
    WireGuardUapi,
    /// <summary>One peer-stream line from the fleet controller (PeerLine).</summary>
    PeerLine,
    /// <summary>The kernel module index in an image and a device's modalias (Tabula.Machine ModuleDependencies, ModuleAliases, Modalias).</summary>
    ModuleIndex,
    /// <summary>A boot ticket from the fleet controller (Tabula.Packaging BootTicket, BootTicketPayload).</summary>
    BootTicket,
    /// <summary>stboot's boot ticket request, as the controller reads it (Tabula.Packaging TicketRequest).</summary>
    TicketRequest,
    /// <summary>A DNS query from a customer and an upstream response, as the relay's in-tunnel forwarder reads them (Tabula.Relay DnsQuery, DnsAnswer).</summary>
    DnsMessage,
    /// <summary>An nf_tables dump reply or batch acknowledgement datagram (Tabula.Linux NfTablesSocket, BatchAcknowledgements).</summary>
    NfTablesNetlink,
    /// <summary>A ctnetlink conntrack dump reply datagram (Tabula.Linux ConntrackSocket).</summary>
    ConntrackNetlink,
    /// <summary>/etc/tabula/relay.json, the relay agent's configuration (Tabula.Fleet.Protocol RelayConfig).</summary>
    RelayConfig,
    /// <summary>A TCG crypto-agile event log: stboot's measurements and the relay's, as a verifier reads them (Tabula.Tpm EventLog).</summary>
    EventLog,
    /// <summary>An OVMF variable store, VARS.fd (Tabula.Images OvmfVariableStore), as `tabula hostconfig efivar --vars` reads it.</summary>
    OvmfVariableStore,

    /// <summary>The data of stboot's PCR 13 PlatformSecurity event as a verifier reads it (Tabula.Packaging HandoverPlatform.ParseMeasured).</summary>
    PlatformMeasurement,
    /// <summary>A TPM's response to a command Tabula.Tpm sends: 4 bytes of TPM_CC, then the response (Tabula.Tpm ResponseParsers).</summary>
    TpmResponse,
}

/// <summary>
/// A fuzz entry point: true when the parser accepted the input (and the re-checks held), false when it refused it
/// with its own typed exception; anything it throws is a finding.
/// </summary>
public delegate bool FuzzAction(ReadOnlySpan<byte> input);

/// <summary>Maps a <see cref="FuzzTarget"/> to its entry point.</summary>
public static class FuzzTargets
{
    /// <summary>The entry point of <paramref name="target"/>.</summary>
    public static FuzzAction Of(FuzzTarget target) => target switch
    {
        FuzzTarget.Descriptor => DescriptorTarget.Fuzz,
        FuzzTarget.Manifest => ManifestTarget.Fuzz,
        FuzzTarget.OsPackageArchive => OsPackageArchiveTarget.Fuzz,
        FuzzTarget.Certificate => CertificateTarget.Fuzz,
        FuzzTarget.Pem => PemTarget.Fuzz,
        FuzzTarget.HostConfig => HostConfigTarget.Fuzz,
        FuzzTarget.TrustPolicy => TrustPolicyTarget.Fuzz,
        FuzzTarget.SigsumProof => SigsumProofTarget.Fuzz,
        FuzzTarget.SigsumPolicy => SigsumPolicyTarget.Fuzz,
        FuzzTarget.Handover => HandoverTarget.Fuzz,
        FuzzTarget.DhcpMessage => DhcpMessageTarget.Fuzz,
        FuzzTarget.RouteNetlink => RouteNetlinkTarget.Fuzz,
        FuzzTarget.WireGuardNetlink => WireGuardNetlinkTarget.Fuzz,
        FuzzTarget.WireGuardUapi => WireGuardUapiTarget.Fuzz,
        FuzzTarget.PeerLine => PeerLineTarget.Fuzz,
        FuzzTarget.ModuleIndex => ModuleIndexTarget.Fuzz,
        FuzzTarget.BootTicket => BootTicketTarget.Fuzz,
        FuzzTarget.TicketRequest => TicketRequestTarget.Fuzz,
        FuzzTarget.DnsMessage => DnsMessageTarget.Fuzz,
        FuzzTarget.NfTablesNetlink => NfTablesNetlinkTarget.Fuzz,
        FuzzTarget.ConntrackNetlink => ConntrackNetlinkTarget.Fuzz,
        FuzzTarget.RelayConfig => RelayConfigTarget.Fuzz,
        FuzzTarget.EventLog => EventLogTarget.Fuzz,
        FuzzTarget.OvmfVariableStore => OvmfVariableStoreTarget.Fuzz,
        FuzzTarget.PlatformMeasurement => PlatformMeasurementTarget.Fuzz,
        FuzzTarget.TpmResponse => TpmResponseTarget.Fuzz,
        _ => throw new ArgumentOutOfRangeException(nameof(target), target, "no such fuzz target"),
    };
}
