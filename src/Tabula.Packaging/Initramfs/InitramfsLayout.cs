namespace Tabula.Packaging;

/// <summary>
/// Where things live in a Tabula initramfs: the one declaration the image builders (Tabula.Images), stboot, the relay
/// agent and the tests share. Paths are archive paths (relative, no leading slash, as cpio stores them); on a running
/// machine they sit under "/" (<see cref="OnMachine"/>).
/// </summary>
public static class InitramfsLayout
{
    /// <summary>PID 1, the static program the kernel starts (tabula-boot or tabula-relay).</summary>
    public const string Init = "init";

    /// <summary>The ST trust policy folder of the stboot image (<see cref="TrustPolicyFolder"/> names the files inside).</summary>
    public const string TrustPolicyDirectory = "etc/trust_policy";

    /// <summary>The host configuration embedded in the stboot image (else stboot reads the STHostConfig EFI variable).</summary>
    public const string HostConfig = "etc/host_configuration.json";

    /// <summary>OS packages embedded for the initramfs fetch method: NAME.json with NAME.zip beside it.</summary>
    public const string EmbeddedPackagesDirectory = "ospkg";

    /// <summary>Kernel module trees: lib/modules/RELEASE/… as in modules.dep.</summary>
    public const string ModulesDirectory = "lib/modules";

    /// <summary>
    /// In <see cref="ModulesDirectory"/>/RELEASE: the dependencies of the modules the image carries (depmod's format,
    /// uncompressed paths), which PID 1 loads in dependency order.
    /// </summary>
    public const string ModulesDepFile = "modules.dep";

    /// <summary>
    /// In <see cref="ModulesDirectory"/>/RELEASE: the aliases of the modules the image carries (depmod's format), which
    /// PID 1 matches against the devices' modaliases at coldplug.
    /// </summary>
    public const string ModulesAliasFile = "modules.alias";

    /// <summary>Tabula's own files in the OS: the relay's configuration and stboot's hand-over.</summary>
    public const string TabulaDirectory = "etc/tabula";

    /// <summary>stboot's hand-over record (<see cref="HandoverRecord"/>), in the archive appended after the verified initramfs.</summary>
    public const string Handover = "etc/tabula/handover.json";

    /// <summary>stboot's TCG event log (binary, the crypto-agile format of Tabula.Tpm's EventLog), beside the hand-over when
    /// stboot measured; handover.json's <c>measured_boot.event_log_sha256</c> names its digest.</summary>
    public const string EventLog = "etc/tabula/event_log.bin";

    /// <summary>The relay OS's configuration (where its fleet controller is), inside the signed initramfs.</summary>
    public const string RelayConfig = "etc/tabula/relay.json";

    /// <summary>The CA certificates (PEM) the relay agent pins for its fleet controller, inside the signed initramfs.</summary>
    public const string FleetCa = "etc/tabula/fleet-ca.pem";

    /// <summary>Where the running machine finds <paramref name="archivePath"/>: "/" in front.</summary>
    public static string OnMachine(string archivePath) => "/" + archivePath;
}
