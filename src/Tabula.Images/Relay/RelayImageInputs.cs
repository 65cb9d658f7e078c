namespace Tabula.Images.Relay;

/// <summary>What a relay OS package is built from.</summary>
/// <param name="Agent">The static tabula-relay binary, installed as /init.</param>
/// <param name="KernelRelease">The kernel release (uname -r); its modules come from <see cref="ModulesRoot"/>/RELEASE.</param>
/// <param name="FleetUrl">The fleet controller's https:// base URL, written to /etc/tabula/relay.json.</param>
/// <param name="FleetCaFile">PEM with the CA certificate(s) the agent pins for the controller (/etc/tabula/fleet-ca.pem).</param>
/// <param name="Modules">Module names; they go in with their dependencies and bus transports (<see cref="KernelModules.ModuleTree.Select"/>).</param>
public sealed record RelayImageInputs(string Agent, string KernelRelease, string FleetUrl, string FleetCaFile,
    IReadOnlyList<string> Modules)
{
    /// <summary>
    /// The default modules: the kernel's WireGuard and the virtio NIC, which Debian 12's linux-image-amd64 ships as
    /// modules; virtio_net's transports (virtio_pci, virtio_mmio) come in by themselves. Add the NIC drivers of real
    /// hardware with <see cref="Modules"/> (e1000e, igb, ixgbe, …); the machine loads those its devices ask for.
    /// Then the egress firewall's (docs/relay.md "Egress"): nf_tables and the expressions it does not build in (ct, nat,
    /// masq, reject for inet, the nat chain type), and ctnetlink for the NAT count and per-device flushes; the relay
    /// has no modprobe, so the kernel cannot load them on demand. crc32c_generic: libcrc32c (needed by nf_tables,
    /// nf_conntrack, nf_nat) asks for "crc32c" only through a softdep, which the module closure does not follow;
    /// without it nf_tables fails in the guest (GETTABLE dump EINVAL).
    /// </summary>
    public static readonly IReadOnlyList<string> DefaultModules =
    [
        "wireguard", "virtio_net",
        "crc32c_generic", "nf_tables", "nft_ct", "nft_nat", "nft_masq", "nft_chain_nat", "nft_reject_inet", "nf_conntrack_netlink",
    ];

    /// <summary>
    /// The default kernel command line: the serial console (where the agent shows its enrollment fingerprint),
    /// reboot at once on a panic (PID 1 dying is one) instead of hanging, no kernel chatter around the agent's lines,
    /// and freed memory zeroed at once (<c>init_on_free=1</c>: a customer's packets and keys do not linger in free pages
    /// until they are reused; issue 15, docs/relay.md "Memory zeroing").
    /// </summary>
    public const string DefaultCmdline = "console=ttyS0,115200 panic=-1 quiet init_on_free=1";

    /// <summary>Further controller instances after <see cref="FleetUrl"/>, tried in this order when it fails (issue 18);
    /// written to relay.json's <c>fleet_urls</c> with <see cref="FleetUrl"/> first. Empty: one controller.</summary>
    public IReadOnlyList<string> MoreFleetUrls { get; init; } = [];

    /// <summary><see cref="FleetUrl"/> and <see cref="MoreFleetUrls"/>, in order.</summary>
    public IReadOnlyList<string> FleetUrls => [FleetUrl, .. MoreFleetUrls];

    /// <summary>The kernel image; null: /boot/vmlinuz-RELEASE.</summary>
    public string? Kernel { get; init; }

    /// <summary>The kernel command line stored in the manifest (stboot boots with it exactly).</summary>
    public string Cmdline { get; init; } = DefaultCmdline;

    /// <summary>The manifest label; null: "Tabula relay RELEASE".</summary>
    public string? Label { get; init; }

    /// <summary>The manifest's release (issue 16 freshness; 0: none).</summary>
    public long Release { get; init; }

    /// <summary>The manifest's machine class (issue 16 freshness; null: none).</summary>
    public string? MachineClass { get; init; }

    /// <summary>Where module trees live (one folder per release).</summary>
    public string ModulesRoot { get; init; } = "/lib/modules";

    /// <summary>The kernel image actually used.</summary>
    public string KernelPath => Kernel ?? $"/boot/vmlinuz-{KernelRelease}";
}

/// <summary>What went into a relay OS package, for the CLI to print.</summary>
/// <param name="Manifest">The manifest written into the archive.</param>
/// <param name="KernelBytes">Size of the kernel image.</param>
/// <param name="InitramfsBytes">Size of the gzip-compressed initramfs in the archive.</param>
/// <param name="InitramfsUncompressedBytes">Size of the cpio archive: what the kernel unpacks into RAM.</param>
/// <param name="InitBytes">Size of /init (the agent).</param>
/// <param name="FleetCa">The pinned certificates, as parsed.</param>
/// <param name="ModuleLoadOrder">Absolute module paths in load order (dependencies first).</param>
/// <param name="Paths">Every explicitly added archive path, sorted.</param>
public sealed record RelayImageSummary(Packaging.Manifest Manifest, long KernelBytes, long InitramfsBytes, long InitramfsUncompressedBytes,
    long InitBytes, IReadOnlyList<Packaging.Certificate> FleetCa, IReadOnlyList<string> ModuleLoadOrder, IReadOnlyList<string> Paths);
