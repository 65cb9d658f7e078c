namespace Tabula.Linux;

/// <summary>Why bytes from the kernel (a netlink reply, an EFI variable file) were refused.</summary>
public enum KernelDataError
{
    /// <summary>A netlink message header is shorter than 16 bytes or claims more bytes than were received.</summary>
    NetlinkMessageTruncated,
    /// <summary>The reply did not fit the receive buffer (<see cref="Limits.NetlinkReceiveBufferBytes"/>).</summary>
    NetlinkReplyTooLarge,
    /// <summary>A reply carried a sequence number other than the request's.</summary>
    NetlinkSequenceMismatch,
    /// <summary>A fixed-size header (ifinfomsg, ifaddrmsg, nlmsgerr) is shorter than its layout.</summary>
    NetlinkHeaderTruncated,
    /// <summary>An attribute header is short, or its length runs past the end of its container.</summary>
    NetlinkAttributeTruncated,
    /// <summary>An attribute payload has the wrong size for its type.</summary>
    NetlinkAttributeSize,
    /// <summary>A dump did not end with NLMSG_DONE within <see cref="Limits.NetlinkMaxDumpMessages"/>.</summary>
    NetlinkDumpTooLong,
    /// <summary>A message of an unexpected type arrived where an acknowledgement was due.</summary>
    NetlinkUnexpectedMessage,
    /// <summary>A field holds a value its type does not allow (an IPv4 prefix length over 32).</summary>
    NetlinkValueOutOfRange,
    /// <summary>An efivarfs file is shorter than its 4-byte attribute prefix.</summary>
    EfiVariableTruncated,
    /// <summary>An efivarfs file is larger than <see cref="Limits.MaxEfiVariableBytes"/>.</summary>
    EfiVariableTooLarge,
    /// <summary>/sys/firmware/memmap is missing, has more than <see cref="FirmwareMemoryMap.MaxEntries"/> entries, or an entry does not parse.</summary>
    MemoryMapInvalid,
    /// <summary>What a kexec'd kernel needs to keep UEFI (boot_params' efi_info, /sys/firmware/efi/runtime-map,
    /// fw_vendor, config_table) is missing or does not parse (<see cref="Efi.EfiBootState"/>).</summary>
    EfiBootStateInvalid,
    /// <summary>A netfilter dump returned more objects than <see cref="Netlink.Netfilter.NetfilterLimits.MaxDumpObjects"/> (or a rule more expressions than allowed).</summary>
    NetfilterTooManyObjects,
    /// <summary>A netfilter object in a reply lacks an attribute it must carry (a name, a key).</summary>
    NetfilterAttributeMissing,
}
