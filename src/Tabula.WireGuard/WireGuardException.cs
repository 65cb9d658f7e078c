using System.Diagnostics.CodeAnalysis;
using Tabula.Linux;

namespace Tabula.WireGuard;

/// <summary>
/// Base of every exception Tabula.WireGuard throws on purpose. Messages never contain key material, endpoints or
/// allowed IPs: they name the operation, the field and the errno, so they are safe for the relay's log ring.
/// Programming errors (a null argument, a peer that both removes and sets fields) are ordinary
/// <see cref="ArgumentException"/>s instead.
/// </summary>
public abstract class WireGuardException : Exception
{
    private protected WireGuardException(string message, Exception? inner = null) : base(message, inner) { }
}

/// <summary>Why a key string was refused.</summary>
public enum KeyFormatError
{
    /// <summary>Not 44 base64 characters ending in one '='.</summary>
    Base64Length,
    /// <summary>44 characters, but not canonical base64 of 32 bytes.</summary>
    Base64Invalid,
    /// <summary>Not 64 hex characters.</summary>
    HexLength,
    /// <summary>64 characters, but not all hex digits.</summary>
    HexInvalid,
}

/// <summary>A key in base64 or hex text could not be parsed. The text itself is not in the message.</summary>
public sealed class WireGuardKeyFormatException : WireGuardException
{
    internal WireGuardKeyFormatException(KeyFormatError reason) : base(Describe(reason)) => Reason = reason;

    /// <summary>What was wrong with the text.</summary>
    public KeyFormatError Reason { get; }

    static string Describe(KeyFormatError reason) => reason switch
    {
        KeyFormatError.Base64Length => "a WireGuard key in base64 is 44 characters ending in '='",
        KeyFormatError.Base64Invalid => "the key is not canonical base64 of 32 bytes",
        KeyFormatError.HexLength => "a WireGuard key in hex is 64 characters",
        KeyFormatError.HexInvalid => "the key contains a character that is not a hex digit",
        _ => reason.ToString(),
    };

    [DoesNotReturn]
    internal static void Throw(KeyFormatError reason) => throw new WireGuardKeyFormatException(reason);
}

/// <summary>Why a reply from a WireGuard implementation (UAPI text or netlink messages) was refused.</summary>
public enum ProtocolError
{
    /// <summary>A UAPI line was longer than <see cref="Limits.UapiMaxLineBytes"/>.</summary>
    LineTooLong,
    /// <summary>A UAPI line had no '=' or was not ASCII.</summary>
    MalformedLine,
    /// <summary>A known key had a value that does not parse (the key is named, the value is not shown).</summary>
    InvalidValue,
    /// <summary>A peer key appeared before any public_key line.</summary>
    PeerKeyOutsidePeer,
    /// <summary>The connection ended before the reply's closing empty line.</summary>
    Truncated,
    /// <summary>A UAPI reply ended without an errno line, or a set reply held other lines.</summary>
    MissingErrno,
    /// <summary>More peers than <see cref="Limits.MaxPeers"/>.</summary>
    TooManyPeers,
    /// <summary>More allowed IPs in one reply than <see cref="Limits.MaxAllowedIps"/>.</summary>
    TooManyAllowedIps,
    /// <summary>A netlink message or attribute length runs past its container or is below its header size.</summary>
    MalformedMessage,
    /// <summary>A netlink attribute has the wrong size for its type.</summary>
    AttributeSize,
    /// <summary>A netlink message was larger than the receive buffer.</summary>
    MessageTooLarge,
    /// <summary>A netlink reply did not answer our request (sequence number or type).</summary>
    UnexpectedMessage,
}

/// <summary>
/// A WireGuard implementation answered with something we cannot accept. Not transient: retrying the same
/// operation against the same implementation gives the same answer.
/// </summary>
public sealed class WireGuardProtocolException : WireGuardException
{
    internal WireGuardProtocolException(ProtocolError reason, string? detail, Exception? inner = null)
        : base(detail is null ? Describe(reason) : $"{Describe(reason)}: {detail}", inner) => (Reason, Detail) = (reason, detail);

    /// <summary>What was wrong.</summary>
    public ProtocolError Reason { get; }

    /// <summary>Where it was wrong (a key name, a line number, an attribute type); never a value.</summary>
    public string? Detail { get; }

    static string Describe(ProtocolError reason) => reason switch
    {
        ProtocolError.LineTooLong => "UAPI reply line too long",
        ProtocolError.MalformedLine => "UAPI reply line is not key=value in ASCII",
        ProtocolError.InvalidValue => "UAPI reply value does not parse",
        ProtocolError.PeerKeyOutsidePeer => "UAPI reply has a peer key before any public_key",
        ProtocolError.Truncated => "the reply ended early",
        ProtocolError.MissingErrno => "UAPI reply without a single errno line",
        ProtocolError.TooManyPeers => $"more than {Limits.MaxPeers} peers",
        ProtocolError.TooManyAllowedIps => $"more than {Limits.MaxAllowedIps} allowed IPs",
        ProtocolError.MalformedMessage => "malformed netlink message",
        ProtocolError.AttributeSize => "netlink attribute has the wrong size",
        ProtocolError.MessageTooLarge => "netlink message larger than the receive buffer",
        ProtocolError.UnexpectedMessage => "netlink reply does not answer the request",
        _ => reason.ToString(),
    };

    [DoesNotReturn]
    internal static void Throw(ProtocolError reason, string? detail = null) => throw new WireGuardProtocolException(reason, detail);
}

/// <summary>
/// The WireGuard implementation refused an operation with an errno: UAPI <c>errno=-22</c>, or a netlink
/// <c>NLMSG_ERROR</c>. Earlier batches of the same update may already be applied (see <see cref="IWireGuardControl"/>).
/// </summary>
public sealed class WireGuardDeviceException : WireGuardException
{
    internal WireGuardDeviceException(string operation, int errno, string? kernelMessage = null)
        : base($"{operation} = {ErrnoNames.Of(errno)}{(kernelMessage is null ? "" : $" ({kernelMessage})")}")
        => (Operation, ErrorCode, KernelMessage) = (operation, errno, kernelMessage);

    /// <summary>What was asked, e.g. "uapi set wg0" or "WG_CMD_SET_DEVICE wg0 (message 3)".</summary>
    public string Operation { get; }

    /// <summary>The positive errno (22 for EINVAL), whatever sign the wire used.</summary>
    public int ErrorCode { get; }

    /// <summary>The kernel's extended-ack text when it sent one (fixed strings, no customer data).</summary>
    public string? KernelMessage { get; }

    /// <summary>The errno's symbolic name, e.g. "EINVAL".</summary>
    public string ErrorName => ErrnoNames.Of(ErrorCode);
}

/// <summary>What is missing when a WireGuard device cannot be reached at all.</summary>
public enum UnavailableReason
{
    /// <summary>No UAPI socket, or nobody accepts on it: the userspace daemon is not running.</summary>
    NoDaemon,
    /// <summary>The kernel has no "wireguard" generic-netlink family or link kind (module absent).</summary>
    NoKernelSupport,
    /// <summary>No interface of that name (ENODEV), or it is not a WireGuard interface.</summary>
    NoSuchInterface,
}

/// <summary>
/// The device or the implementation is not there. Callers pick another implementation (wg-quick falls back from
/// the kernel to wireguard-go) or report and retry later.
/// </summary>
public sealed class WireGuardUnavailableException : WireGuardException
{
    internal WireGuardUnavailableException(UnavailableReason reason, string interfaceName, Exception? inner = null)
        : base(Describe(reason, interfaceName), inner) => (Reason, InterfaceName) = (reason, interfaceName);

    /// <summary>What is missing.</summary>
    public UnavailableReason Reason { get; }

    /// <summary>The interface that was asked for.</summary>
    public string InterfaceName { get; }

    static string Describe(UnavailableReason reason, string name) => reason switch
    {
        UnavailableReason.NoDaemon => $"no WireGuard daemon answers for {name} (UAPI socket missing or dead)",
        UnavailableReason.NoKernelSupport => "the kernel has no WireGuard support (module not loaded or not built)",
        UnavailableReason.NoSuchInterface => $"no WireGuard interface {name}",
        _ => reason.ToString(),
    };
}

/// <summary>A system call failed: spelled like u-root's messages, <c>connect(AF_UNIX, /var/run/wireguard/wg0.sock) = EACCES</c> or Tabula.Linux's <c>socket(AF_NETLINK, …) = EPERM</c>.</summary>
public sealed class WireGuardSystemException : WireGuardException
{
    internal WireGuardSystemException(string call, int errno) : base($"{call} = {ErrnoNames.Of(errno)}")
        => (Call, ErrorCode) = (call, errno);

    /// <summary>The call and its arguments (no secrets).</summary>
    public string Call { get; }

    /// <summary>The positive errno.</summary>
    public int ErrorCode { get; }

    /// <summary>True when retrying the same call may succeed (EINTR, EAGAIN, ENOBUFS, ENOMEM).</summary>
    public bool IsTransient => (Errno)ErrorCode is Errno.EINTR or Errno.EAGAIN or Errno.ENOBUFS or Errno.ENOMEM;
}

/// <summary>Symbolic errno names for messages: "EINVAL" for 22, "errno 200" for a value Tabula.Linux's <see cref="Errno"/> does not name.</summary>
internal static class ErrnoNames
{
    public static string Of(int errno) =>
        Enum.IsDefined((Errno)errno) ? ((Errno)errno).ToString() : $"errno {errno.ToString(System.Globalization.CultureInfo.InvariantCulture)}";
}
