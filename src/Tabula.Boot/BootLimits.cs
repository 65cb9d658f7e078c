namespace Tabula.Boot;

/// <summary>
/// Every bound stboot applies to what it reads from the network or the image. Time bounds follow upstream stboot
/// (formats reference §5: dial 30 s, TLS handshake 10 s, 8 attempts 1 s apart per object, 20 min overall); the
/// size bounds are ours (threat checklist #9): nothing the server sends can make PID 1 allocate without a cap.
/// </summary>
internal static class BootLimits
{
    /// <summary>A descriptor: Packaging's limit (64 signers of ~1 KiB PEM each fit easily).</summary>
    public const int MaxDescriptorBytes = Packaging.Limits.MaxDescriptorBytes;

    /// <summary>The archive is streamed into RAM (memfd); 2 GiB is also kexec_file_load's INT_MAX per file.</summary>
    public const long MaxArchiveBytes = Packaging.Limits.MaxArchiveBytes;

    /// <summary>ospkg_pointer URLs tried per round.</summary>
    public const int MaxPointers = 16;

    /// <summary>Upstream: dial timeout.</summary>
    public static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>No byte for this long ends one attempt (slow retrieval, checklist #10).</summary>
    public static readonly TimeSpan ReadIdleTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Upstream: overall deadline for all downloads of one round.</summary>
    public static readonly TimeSpan RoundDeadline = TimeSpan.FromMinutes(20);

    /// <summary>Ticket requests per boot attempt (freshness): a down controller costs at most this many tries.</summary>
    public const int TicketAttempts = 3;

    /// <summary>One ticket request, connect to last byte (the answer is at most 4 KiB).</summary>
    public static readonly TimeSpan TicketTimeout = TimeSpan.FromSeconds(15);

    /// <summary>host configuration read from the EFI variable (the JSON limit of Packaging).</summary>
    public const int MaxHostConfigBytes = Packaging.Limits.MaxConfigJsonBytes;
}
