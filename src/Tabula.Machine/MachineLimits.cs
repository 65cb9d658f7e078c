namespace Tabula.Machine;

/// <summary>
/// The bounds of bringing a machine up. Time bounds follow upstream stboot (formats reference §5: 30 s link-up wait,
/// DHCP 6 s × 4 retries, which we round up to 30 s); the size bound is ours: nothing the network sends can make PID 1
/// allocate without a cap.
/// </summary>
public static class MachineLimits
{
    /// <summary>DHCP: wait for a lease at most this long per attempt round.</summary>
    public static readonly TimeSpan DhcpTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Wait this long for a NIC to appear and then for carrier.</summary>
    public static readonly TimeSpan LinkWait = TimeSpan.FromSeconds(30);

    /// <summary>After this long with NICs but none with a configured MAC, every NIC is a candidate (as upstream).</summary>
    public static readonly TimeSpan MacFallback = TimeSpan.FromSeconds(3);

    /// <summary>A DHCP message (RFC 2131 minimum 576-byte datagrams; we accept up to a full Ethernet frame).</summary>
    public const int MaxDhcpMessageBytes = 1500;

    /// <summary>A lease renewed sooner than this is renewed at this pace (a server handing out 10 s leases cannot
    /// make the relay spin).</summary>
    public static readonly TimeSpan MinRenewInterval = TimeSpan.FromSeconds(10);

    /// <summary>modules.dep and modules.alias: Debian 12's full files are 0.5 and 1.3 MB; an image carries a few lines.</summary>
    public const int MaxModuleIndexBytes = 16 * 1024 * 1024;

    /// <summary>Lines of one index file (Debian 12's modules.alias has 26,000).</summary>
    public const int MaxModuleIndexLines = 500_000;

    /// <summary>One line of an index file (the longest alias line in Debian 12 has 106 bytes; modules.dep lines list
    /// every dependency's path).</summary>
    public const int MaxModuleIndexLineBytes = 16 * 1024;

    /// <summary>Nesting of module dependencies (real chains are a handful deep).</summary>
    public const int MaxModuleDependencyDepth = 64;

    /// <summary>One device's modalias (sysfs attributes are at most a page; real ones are under 200 bytes).</summary>
    public const int MaxModaliasBytes = 4096;

    /// <summary>Devices coldplug looks at.</summary>
    public const int MaxColdplugDevices = 20_000;

    /// <summary>Scans of the devices after a round of loading (bus drivers make devices of the next bus appear:
    /// PCI → virtio → the NIC is two).</summary>
    public const int MaxColdplugRounds = 8;
}
