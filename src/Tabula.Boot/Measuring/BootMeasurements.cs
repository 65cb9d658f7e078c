using System.Security.Cryptography;
using System.Text;
using Tabula.Packaging;
using Tabula.Tpm.Measurements;

namespace Tabula.Boot.Measuring;

/// <summary>
/// The measurements of one boot: the event log of everything extended so far (it only grows, as PCRs do: a round
/// that fails after its measure stage leaves its events in the TPM, so they stay in the log and the log keeps
/// replaying to the PCRs), and which events are due next (<see cref="Due"/>). docs/boot.md "Measured boot".
/// </summary>
internal sealed class BootMeasurements
{
    /// <summary>What has been extended, in order.</summary>
    public EventLog Log { get; private set; } = EventLog.Empty;

    /// <summary>True once the authority (PCR 13) and identity (PCR 14) events of the configuration are in.</summary>
    public bool ConfigurationMeasured { get; private set; }

    /// <summary>Records an event the TPM extended.</summary>
    public void Extended(MeasuredEvent measured) => Log = Log.Append(measured);

    /// <summary>Records that every configuration event is in (after the last of them was extended).</summary>
    public void ConfigurationDone() => ConfigurationMeasured = true;

    /// <summary>
    /// The events of this hand-over, in extend order (ST's: 12, 13, 14), and how many of them are configuration events:
    /// PCR 12 the archive (its verified digest; data its file name) and the descriptor (as fetched); once per boot
    /// PCR 13 trust_policy.json (as read), the signing roots, the TLS roots (DER, concatenated; empty without), the ticket
    /// root (with a freshness policy), the platform (firmware, Secure Boot, lockdown: <see cref="HandoverPlatform"/>), and PCR 14 the machine id (UxIdentity, when the host configuration has an
    /// identity key) and the host configuration without secrets (<see cref="HostConfigMeasured"/>); then, per hand-over,
    /// PCR 14 the boot ticket exactly as received, when there is one.
    /// </summary>
    public IReadOnlyList<MeasuredEvent> Due(BootConfiguration configuration, byte[] trustPolicyJson, FetchedPackage package, byte[]? ticket,
        HandoverPlatform? platform)
    {
        var due = new List<MeasuredEvent>
        {
            new(PcrOf(StbootEvent.OspkgArchive), StbootEvent.OspkgArchive, package.Sha256.Bytes, Encoding.UTF8.GetBytes(package.ArchiveName)),
            Of(StbootEvent.OspkgManifest, package.DescriptorBytes),
        };
        if (!ConfigurationMeasured)
        {
            var trust = configuration.Trust;
            due.Add(Of(StbootEvent.SecurityConfig, trustPolicyJson));
            due.Add(Of(StbootEvent.SigningRoot, Concatenated(trust.SigningRoots)));
            due.Add(Of(StbootEvent.HttpsRoot, Concatenated(trust.TlsRoots ?? [])));
            if (trust.TicketRoot is { } ticketRoot)
                due.Add(Of(StbootEvent.TicketRoot, ticketRoot));
            if (platform is not null)
                due.Add(Of(StbootEvent.PlatformSecurity, platform.ToMeasuredJson()));
            if (MachineId(configuration.HostConfigJson) is { } id)
                due.Add(Of(StbootEvent.UxIdentity, Encoding.ASCII.GetBytes(id)));
            due.Add(Of(StbootEvent.HostConfig, HostConfigMeasured.Of(configuration.HostConfigJson)));
        }
        if (ticket is not null)
            due.Add(Of(StbootEvent.BootTicket, ticket));
        return due;
    }

    /// <summary>The PCR of an event type: Tabula.Tpm's table (<see cref="StbootEvents.PcrOf"/>), the one a verifier checks.</summary>
    static int PcrOf(StbootEvent type) => StbootEvents.PcrOf(type) ?? throw new ArgumentOutOfRangeException(nameof(type));

    static MeasuredEvent Of(StbootEvent type, ReadOnlySpan<byte> data) => MeasuredEvent.OfData(PcrOf(type), type, data);

    /// <summary>True for the events measured once per boot.</summary>
    public static bool IsConfigurationEvent(MeasuredEvent e) =>
        e.Type is StbootEvent.SecurityConfig or StbootEvent.SigningRoot or StbootEvent.HttpsRoot or StbootEvent.TicketRoot
            or StbootEvent.PlatformSecurity or StbootEvent.UxIdentity or StbootEvent.HostConfig;

    static byte[] Concatenated(IEnumerable<Certificate> certificates) => certificates.SelectMany(c => c.Der).ToArray();

    /// <summary>The machine id of the host configuration's identity key, or null when it has none.</summary>
    static string? MachineId(byte[] hostConfigJson)
    {
        byte[] key;
        try { key = MachineIdentity.PrivateKeyFromHostConfig(HostConfig.JsonPart(hostConfigJson)); }
        catch (PackageFormatException) { return null; }
        try { return MachineIdentity.MachineId(Tabula.Packaging.Crypto.Ed25519.PublicKeyOf(key)); }
        finally { CryptographicOperations.ZeroMemory(key); }
    }
}
