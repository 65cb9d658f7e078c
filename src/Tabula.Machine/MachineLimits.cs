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
}
