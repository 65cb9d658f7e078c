namespace Tabula.Linux.Netlink;

/// <summary>nlmsghdr flags (include/uapi/linux/netlink.h). GET requests use Root/Match; NEW requests Replace/Excl/Create/Append.</summary>
[Flags]
public enum NetlinkMessageFlags : ushort
{
    /// <summary>No flags.</summary>
    None = 0,
    /// <summary>NLM_F_REQUEST.</summary>
    Request = 0x1,
    /// <summary>NLM_F_MULTI: part of a multipart reply ended by NLMSG_DONE.</summary>
    Multi = 0x2,
    /// <summary>NLM_F_ACK.</summary>
    Ack = 0x4,
    /// <summary>NLM_F_ECHO: echo this request back.</summary>
    Echo = 0x8,
    /// <summary>NLM_F_ROOT | NLM_F_MATCH.</summary>
    Dump = 0x300,
    /// <summary>NLM_F_REPLACE.</summary>
    Replace = 0x100,
    /// <summary>NLM_F_EXCL.</summary>
    Exclusive = 0x200,
    /// <summary>NLM_F_CREATE.</summary>
    Create = 0x400,
    /// <summary>NLM_F_APPEND.</summary>
    Append = 0x800,
}
