namespace Tabula.Provisioning;

/// <summary>
/// Every bound the provisioning server enforces, in one place. Defaults are chosen for a fleet of a few thousand
/// machines on one server; each can be overridden in the config file under <c>Limits</c>.
/// </summary>
public sealed class ProvisioningLimits
{
    /// <summary>Largest OS package archive accepted. Each kexec file must stay below 2 GiB (threat checklist #9),
    /// and kernel + initramfs sit in one zip, so 2 GiB bounds the archive.</summary>
    public long MaxArchiveBytes { get; set; } = 2L * 1024 * 1024 * 1024;

    /// <summary>Largest descriptor accepted: a few signatures with certificates and Sigsum proofs (~3 KiB each).
    /// Arbitrary limit, may be increased.</summary>
    public int MaxDescriptorBytes { get; set; } = 256 * 1024;

    /// <summary>Largest JSON body of any other staff request (channel moves).</summary>
    public int MaxJsonBodyBytes { get; set; } = 16 * 1024;

    /// <summary>Largest group file (selector + host configuration) read from the store.</summary>
    public int MaxGroupFileBytes { get; set; } = 64 * 1024;

    /// <summary>Staff API requests per minute from one client (publish, channel moves, audit). Bounds token guessing.</summary>
    public int StaffRequestsPerMinute { get; set; } = 120;

    /// <summary>Machine requests (descriptors, archives, host configurations) per second from one client address.
    /// The address is used only as an in-memory partition key; it is never logged or exported.</summary>
    public int MachineRequestsPerSecond { get; set; } = 200;

    /// <summary>Concurrent connections Kestrel accepts before refusing new ones.</summary>
    public int MaxConcurrentConnections { get; set; } = 4096;

    /// <summary>Concurrent connections one client address (an IPv4 address, an IPv6 /64) may hold; more are closed at once,
    /// so one client holding slow downloads cannot take the slots of machines that are booting. Generous for a rack
    /// booting behind one NAT address (arbitrary; raise it for bigger racks). The address is an in-memory key only.</summary>
    public int MaxConnectionsPerClient { get; set; } = 64;

    /// <summary>Seconds a client may take for the TLS handshake, and again to send its request headers (slowloris
    /// bound).</summary>
    public int RequestHeadersTimeoutSeconds { get; set; } = 10;

    /// <summary>Seconds an idle keep-alive connection is kept.</summary>
    public int KeepAliveTimeoutSeconds { get; set; } = 30;

    /// <summary>Minimum upload rate in bytes per second after a grace period; slower uploads are aborted and
    /// nothing of them is kept.</summary>
    public int MinUploadBytesPerSecond { get; set; } = 4096;

    /// <summary>Seconds of grace before <see cref="MinUploadBytesPerSecond"/> applies (at least 2).</summary>
    public int MinRateGraceSeconds { get; set; } = 10;

    /// <summary>Overall deadline of one staff request, uploads included (seconds).</summary>
    public int StaffRequestTimeoutSeconds { get; set; } = 1800;

    /// <summary>Audit entries returned by one request.</summary>
    public int MaxAuditEntries { get; set; } = 1000;

    /// <summary>Length of multipart section headers (RFC 7578 parts carry a few short headers).</summary>
    public const int MaxMultipartHeaderBytes = 8 * 1024;

    /// <summary>Copy buffer for staging uploads: large enough to keep syscalls few, rented from the shared pool.</summary>
    public const int CopyBufferBytes = 128 * 1024;

    /// <summary>Response bytes Kestrel buffers per connection before applying back-pressure.</summary>
    public const int ResponseBufferBytes = 1024 * 1024;

    /// <summary>Channel and group names: 1-64 characters of [a-z0-9-]. Also keeps them safe as file names.</summary>
    public const int MaxNameLength = 64;

    /// <summary>Selector label values (MAC, hostname, serial).</summary>
    public const int MaxLabelValueLength = 253;
}
