using System.Diagnostics.CodeAnalysis;

namespace Tabula.Linux;

/// <summary>Bytes from the kernel did not have the shape their interface defines.</summary>
public sealed class KernelDataException : Exception
{
    internal KernelDataException(KernelDataError reason, string detail)
        : base($"{Describe(reason)}: {detail}") => Reason = reason;

    /// <summary>What was wrong.</summary>
    public KernelDataError Reason { get; }

    [DoesNotReturn]
    internal static void Throw(KernelDataError reason, string detail) => throw new KernelDataException(reason, detail);

    static string Describe(KernelDataError reason) => reason switch
    {
        KernelDataError.NetlinkMessageTruncated => "netlink message truncated",
        KernelDataError.NetlinkReplyTooLarge => "netlink reply larger than the receive buffer",
        KernelDataError.NetlinkSequenceMismatch => "netlink reply for another request",
        KernelDataError.NetlinkHeaderTruncated => "netlink family header truncated",
        KernelDataError.NetlinkAttributeTruncated => "netlink attribute truncated",
        KernelDataError.NetlinkAttributeSize => "netlink attribute has the wrong size",
        KernelDataError.NetlinkDumpTooLong => "netlink dump did not end",
        KernelDataError.NetlinkUnexpectedMessage => "unexpected netlink message",
        KernelDataError.NetlinkValueOutOfRange => "netlink field out of range",
        KernelDataError.EfiVariableTruncated => "EFI variable shorter than its attributes",
        KernelDataError.EfiVariableTooLarge => "EFI variable too large",
        KernelDataError.MemoryMapInvalid => "firmware memory map unusable",
        KernelDataError.EfiBootStateInvalid => "EFI boot state unusable for a kexec hand-over",
        KernelDataError.NetfilterTooManyObjects => "netfilter reply has too many objects",
        KernelDataError.NetfilterAttributeMissing => "netfilter object lacks a required attribute",
        _ => reason.ToString(),
    };
}
