using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Generic;

namespace Tabula.Linux.Tests;

/// <summary>Generic-netlink family resolution against the running kernel (no privileges needed).</summary>
public sealed class GenericNetlinkTests
{
    [Fact]
    public void The_controller_resolves_its_own_family_name_to_GENL_ID_CTRL()
    {
        using var socket = NetlinkSocket.Open(NetlinkProtocol.Generic);
        Assert.Equal(GenericNetlink.ControllerFamilyId, GenericNetlink.ResolveFamily(socket, "nlctrl"));
    }

    [Fact]
    public void An_unknown_family_resolves_to_null_and_the_socket_stays_usable()
    {
        using var socket = NetlinkSocket.Open(NetlinkProtocol.Generic);
        Assert.Null(GenericNetlink.ResolveFamily(socket, "tabula-nope"));
        Assert.Equal(GenericNetlink.ControllerFamilyId, GenericNetlink.ResolveFamily(socket, "nlctrl"));
    }

    [Fact]
    public void The_wireguard_family_resolves_exactly_when_the_kernel_has_wireguard()
    {
        using var socket = NetlinkSocket.Open(NetlinkProtocol.Generic);
        Assert.Equal(Directory.Exists("/sys/module/wireguard"), GenericNetlink.ResolveFamily(socket, "wireguard") is not null);
    }

    [Fact]
    public void A_reply_shorter_than_genlmsghdr_is_refused() =>
        Assert.Equal(KernelDataError.NetlinkHeaderTruncated,
            Assert.Throws<KernelDataException>(() => GenericNetlink.Attributes([1, 2])).Reason);
}
