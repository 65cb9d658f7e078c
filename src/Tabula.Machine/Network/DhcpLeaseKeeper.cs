using Tabula.Packaging;

namespace Tabula.Machine.Network;

/// <summary>
/// Keeps a long-running machine's DHCP lease (the relay; stboot hands over long before its lease ends), on a thread of
/// its own: at T1 (half the lease) it renews; a renewal that fails is tried again every
/// <see cref="MachineLimits.MinRenewInterval"/> until the lease ends, and then the network is configured from scratch
/// (DISCOVER) until that works. Every wait is at least <see cref="MachineLimits.MinRenewInterval"/>, so no server
/// answer can make it spin. Static setups need nothing and start no thread.
/// </summary>
public sealed class DhcpLeaseKeeper(MachineNetwork network, HostConfig host, Action<string, string> note)
{
    static readonly TimeSpan RenewTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Starts keeping <paramref name="setup"/>'s lease; returns the thread, or null for a static address.</summary>
    public Thread? Start(NetworkSetup setup)
    {
        if (setup.Lease is null)
            return null;
        var thread = new Thread(() => Keep(setup)) { IsBackground = true, Name = "dhcp-lease" };
        thread.Start();
        return thread;
    }

    void Keep(NetworkSetup setup)
    {
        while (true)
        {
            var lease = setup.Lease!;
            DateTime obtained = DateTime.UtcNow;
            DateTime expires = lease.LeaseSeconds is 0 or uint.MaxValue ? DateTime.MaxValue : obtained.AddSeconds(lease.LeaseSeconds);
            Thread.Sleep(lease.RenewAfter);
            while (true)
            {
                if (network.Renew(setup, RenewTimeout) is { } renewed)
                {
                    note("dhcp", $"renewed lease={renewed.Lease!.LeaseSeconds}s");
                    setup = renewed;
                    break;
                }
                if (DateTime.UtcNow >= expires)
                {
                    try
                    {
                        setup = network.Configure(host);
                        note("dhcp", $"the lease ended; new {setup.Summary}");
                        break;
                    }
                    catch (NetworkException e)
                    {
                        note("dhcp", $"the lease ended and no new one: {e.Error} {e.Message}");
                    }
                }
                Thread.Sleep(MachineLimits.MinRenewInterval);
            }
        }
    }
}
