namespace Tabula.Linux;

/// <summary>Every bound this library applies, with where it comes from.</summary>
public static class Limits
{
    /// <summary>
    /// x86 COMMAND_LINE_SIZE (arch/x86/include/asm/setup.h), including the terminating NUL that
    /// kexec_file_load requires.
    /// </summary>
    public const int MaxKernelCommandLineBytes = 2048;

    /// <summary>
    /// Receive buffer for one netlink datagram. The kernel sizes dump datagrams to at most 32 KiB (netlink_dump caps
    /// max_recvmsg_len); libmnl recommends 32 KiB (MNL_SOCKET_BUFFER_SIZE). Twice that, so an error reply that echoes
    /// a full 32 KiB request (a kernel without NETLINK_CAP_ACK) still fits.
    /// </summary>
    public const int NetlinkReceiveBufferBytes = 64 * 1024;

    /// <summary>Largest request this library builds by default. Arbitrary limit, may be increased.</summary>
    public const int NetlinkMaxRequestBytes = 16 * 1024;

    /// <summary>
    /// Largest batch (several messages in one datagram). The kernel refuses a datagram over its socket send buffer
    /// less 32 bytes (netlink_sendmsg, EMSGSIZE; net.core.wmem_default is 208 KiB); half of that leaves margin.
    /// </summary>
    public const int NetlinkMaxBatchBytes = 104 * 1024;

    /// <summary>Longest string attribute read from the kernel. Arbitrary limit, may be increased.</summary>
    public const int NetlinkMaxStringBytes = 4096;

    /// <summary>
    /// Datagrams read for one dump before giving up. A machine with a few hundred links needs a few dozen;
    /// arbitrary limit, may be increased.
    /// </summary>
    public const int NetlinkMaxDumpMessages = 4096;

    /// <summary>
    /// Largest efivarfs file read, attributes included. Firmware commonly caps a variable at 64 KiB
    /// (PcdMaxVariableSize in EDK II platforms); a host configuration is a few hundred bytes.
    /// </summary>
    public const int MaxEfiVariableBytes = 64 * 1024 + 4;

    /// <summary>Longest string parameter block passed to finit_module. Arbitrary limit, may be increased.</summary>
    public const int MaxModuleParameterBytes = 4096;
}
