using System.Buffers;

namespace Tabula.WireGuard.Kernel;

/// <summary>
/// Configures an in-kernel WireGuard interface through the "wireguard" generic-netlink family
/// (include/uapi/linux/wireguard.h). Implements <see cref="IWireGuardControl"/>; see its contract.
/// </summary>
/// <remarks>
/// <para>Each call opens its own NETLINK_GENERIC socket and resolves the family id (CTRL_CMD_GETFAMILY), so the
/// socket belongs to the <b>network namespace of the calling thread</b>: the async methods complete synchronously on
/// that thread and never hop to the thread pool. Needs CAP_NET_ADMIN in that namespace.</para>
/// <para>Updates are split into WG_CMD_SET_DEVICE messages of at most <see cref="Limits.NetlinkSetMessageBytes"/>
/// (about 450 peers with one IPv4 allowed IP each); each message is acknowledged before the next is built, so an errno
/// names the message it belongs to and memory stays at one message. The interface itself is created with
/// <see cref="WireGuardLink"/>.</para>
/// </remarks>
public sealed class KernelWireGuardControl : IWireGuardControl
{
    /// <summary>Controls the kernel WireGuard interface <paramref name="interfaceName"/>.</summary>
    public KernelWireGuardControl(string interfaceName) =>
        InterfaceName = InterfaceNames.Validate(interfaceName, nameof(interfaceName));

    /// <inheritdoc />
    public string InterfaceName { get; }

    /// <summary>Messages sent by the last <see cref="Apply"/> on this instance (diagnostics and benchmarks).</summary>
    public int LastMessageCount { get; private set; }

    /// <inheritdoc />
    public Task ApplyAsync(DeviceUpdate update, CancellationToken cancellationToken = default)
    {
        Apply(update, cancellationToken);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public Task<DeviceState> GetAsync(CancellationToken cancellationToken = default) =>
        Task.FromResult(Get(cancellationToken));

    /// <summary>Synchronous <see cref="ApplyAsync"/>.</summary>
    public void Apply(DeviceUpdate update, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(update);
        using var socket = NetlinkSocket.Open(Netlink.ProtocolGeneric);
        ushort family = ResolveFamily(socket);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(Limits.NetlinkSetMessageBytes);
        try
        {
            var writer = new NetlinkMessageWriter(buffer, Limits.NetlinkSetMessageBytes);
            using var encoder = new KernelSetEncoder(InterfaceName, update);
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!encoder.TryWriteNext(writer, family, socket.NextSequence()))
                    break;
                socket.Request(writer.Finish(), $"WG_CMD_SET_DEVICE {InterfaceName} (message {encoder.MessageCount})",
                    MapInterfaceError);
            }
            LastMessageCount = encoder.MessageCount;
        }
        finally
        {
            // The buffer held private and preshared keys.
            Array.Clear(buffer, 0, Limits.NetlinkSetMessageBytes);
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Synchronous <see cref="GetAsync"/>.</summary>
    public DeviceState Get(CancellationToken cancellationToken = default)
    {
        using var socket = NetlinkSocket.Open(Netlink.ProtocolGeneric);
        ushort family = ResolveFamily(socket);
        var writer = new NetlinkMessageWriter(64);
        writer.Begin(family, Netlink.Request | Netlink.Dump, socket.NextSequence());
        writer.GenericHeader(WgNetlink.GetDevice, WgNetlink.Version);
        writer.String(WgNetlink.DeviceIfName, InterfaceName);
        using var decoder = new KernelGetDecoder();
        socket.Dump(writer.Finish(), $"WG_CMD_GET_DEVICE {InterfaceName}", (type, payload) =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (type != family)
                WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, $"type {type}");
            decoder.Accept(payload);
        }, MapInterfaceError);
        return decoder.ToDeviceState(InterfaceName);
    }

    ushort ResolveFamily(NetlinkSocket socket) =>
        GenericNetlinkFamily.Resolve(socket, WgNetlink.FamilyName)
        ?? throw new WireGuardUnavailableException(UnavailableReason.NoKernelSupport, InterfaceName);

    // drivers/net/wireguard/netlink.c lookup_interface: ENODEV when absent, EOPNOTSUPP when not a wireguard link.
    Exception? MapInterfaceError(int errno) => errno is Errno.ENODEV or Errno.EOPNOTSUPP
        ? new WireGuardUnavailableException(UnavailableReason.NoSuchInterface, InterfaceName)
        : null;
}
