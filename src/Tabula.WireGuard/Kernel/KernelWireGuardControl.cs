using Tabula.Linux;
using Tabula.Linux.Netlink;
using Tabula.Linux.Netlink.Generic;

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
/// names the message it belongs to and memory stays at one message. The socket, framing and family resolution are
/// Tabula.Linux's (<see cref="NetlinkSocket"/>, <see cref="GenericNetlink"/>); the interface itself is created with
/// Tabula.Linux's <c>RouteSocket.CreateLink(name, LinkKind.WireGuard)</c>.</para>
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
        using var socket = OpenSocket();
        ushort family = ResolveFamily(socket);
        var writer = new NetlinkMessageBuilder(Limits.NetlinkSetMessageBytes);
        try
        {
            using var encoder = new KernelSetEncoder(InterfaceName, update);
            while (true)
            {
                cancellationToken.ThrowIfCancellationRequested();
                if (!encoder.TryWriteNext(writer, family))
                    break;
                string operation = $"WG_CMD_SET_DEVICE {InterfaceName} (message {encoder.MessageCount})";
                Translate(operation, () => socket.Acknowledge(writer, operation));
            }
            LastMessageCount = encoder.MessageCount;
        }
        finally
        {
            // The buffer held private and preshared keys.
            writer.ZeroBuffer();
        }
    }

    /// <summary>Synchronous <see cref="GetAsync"/>.</summary>
    public DeviceState Get(CancellationToken cancellationToken = default)
    {
        using var socket = OpenSocket();
        ushort family = ResolveFamily(socket);
        var request = new NetlinkMessageBuilder(family, NetlinkMessageFlags.Request | NetlinkMessageFlags.Dump);
        GenericNetlink.AppendHeader(request, WgNetlink.GetDevice, WgNetlink.Version);
        request.AddString(WgNetlink.DeviceIfName, InterfaceName);
        using var decoder = new KernelGetDecoder();
        string operation = $"WG_CMD_GET_DEVICE {InterfaceName}";
        Translate(operation, () => socket.Dump(request, operation, message =>
        {
            cancellationToken.ThrowIfCancellationRequested();
            if (message.Type != family)
                WireGuardProtocolException.Throw(ProtocolError.UnexpectedMessage, $"type {message.Type}");
            decoder.Accept(message.Payload);
        }));
        return decoder.ToDeviceState(InterfaceName);
    }

    NetlinkSocket OpenSocket() =>
        Translate("open NETLINK_GENERIC", () => NetlinkSocket.Open(NetlinkProtocol.Generic));

    ushort ResolveFamily(NetlinkSocket socket) =>
        Translate($"CTRL_CMD_GETFAMILY({WgNetlink.FamilyName})", () => GenericNetlink.ResolveFamily(socket, WgNetlink.FamilyName))
        ?? throw new WireGuardUnavailableException(UnavailableReason.NoKernelSupport, InterfaceName);

    void Translate(string operation, Action action) => Translate(operation, () => { action(); return 0; });

    // Tabula.Linux's failures in this library's terms (see IWireGuardControl): the kernel refusing the request itself
    // is a device error, a failing socket call a system error, bytes that do not parse a protocol error.
    T Translate<T>(string operation, Func<T> action)
    {
        try
        {
            return action();
        }
        // drivers/net/wireguard/netlink.c lookup_interface: ENODEV when absent, EOPNOTSUPP when not a wireguard link.
        catch (LinuxException e) when (e.Call == operation && e.Errno is Errno.ENODEV or Errno.EOPNOTSUPP)
        {
            throw new WireGuardUnavailableException(UnavailableReason.NoSuchInterface, InterfaceName, e);
        }
        catch (LinuxException e) when (e.Call == operation)
        {
            throw new WireGuardDeviceException(operation, (int)e.Errno, e.KernelMessage);
        }
        catch (LinuxException e)
        {
            throw new WireGuardSystemException(e.Call, (int)e.Errno);
        }
        catch (KernelDataException e)
        {
            throw new WireGuardProtocolException(
                e.Reason == KernelDataError.NetlinkAttributeSize ? ProtocolError.AttributeSize : ProtocolError.MalformedMessage, e.Message, e);
        }
    }
}
