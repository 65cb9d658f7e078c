namespace Tabula.Packaging;

/// <summary>
/// Every bound the parsers enforce, in one place. Inputs come from the network (stboot, the
/// provisioning server) or from operators; none of them may make us allocate without a cap.
/// The numbers are arbitrary but generous; raise them here, with a reason, if real packages need it.
/// </summary>
public static class Limits
{
    /// <summary>Descriptor JSON. A descriptor with 64 certificates of ~1 KiB PEM each fits easily.</summary>
    public const int MaxDescriptorBytes = 1 << 20;

    /// <summary>Entries in a descriptor's parallel arrays (signers). Far above any real threshold.</summary>
    public const int MaxSignatures = 64;

    /// <summary>manifest.json inside the archive.</summary>
    public const int MaxManifestBytes = 64 << 10;

    /// <summary>The whole OS package archive (kernel + initramfs + manifest), compressed.</summary>
    public const long MaxArchiveBytes = 2L << 30;

    /// <summary>One archive entry once decompressed (kernel or initramfs).</summary>
    public const long MaxEntryBytes = 1L << 30;

    /// <summary>Sum of all entries once decompressed; stops zip bombs built from many entries.</summary>
    public const long MaxTotalUncompressedBytes = 2L << 30;

    /// <summary>Largest allowed expansion of one entry; real kernels/initramfs are already compressed.</summary>
    public const int MaxCompressionRatio = 200;

    /// <summary>Entries in the archive; upstream packages have 4 (2021 ones with ACMs have 6).</summary>
    public const int MaxArchiveEntries = 64;

    /// <summary>Zip entry name length in bytes.</summary>
    public const int MaxEntryNameBytes = 512;

    /// <summary>A PEM file (roots, certificates, keys). Root bundles are a few KiB.</summary>
    public const int MaxPemBytes = 256 << 10;

    /// <summary>PEM blocks in one file.</summary>
    public const int MaxPemBlocks = 64;

    /// <summary>One DER certificate.</summary>
    public const int MaxCertificateBytes = 16 << 10;

    /// <summary>trust_policy.json, host_configuration.json.</summary>
    public const int MaxConfigJsonBytes = 64 << 10;

    /// <summary>JSON nesting; none of our formats nest deeper than 3.</summary>
    public const int MaxJsonDepth = 16;

    /// <summary>A Sigsum proof file (the upstream sample is 3 KiB with 8 cosignatures).</summary>
    public const int MaxSigsumProofBytes = 64 << 10;

    /// <summary>A Sigsum policy file.</summary>
    public const int MaxSigsumPolicyBytes = 64 << 10;

    /// <summary>Inclusion proof length: log2 of any tree we could meet is below 64.</summary>
    public const int MaxSigsumNodeHashes = 64;

    /// <summary>Cosignature lines in one proof and witnesses/groups in one policy.</summary>
    public const int MaxSigsumCosignatures = 256;

    /// <summary>A cpio path: PATH_MAX, init/initramfs.c refuses longer names (the newc namesize includes the NUL).</summary>
    public const int MaxCpioPathBytes = 4095;

    /// <summary>A cpio file: newc stores c_filesize as 8 hex digits.</summary>
    public const long MaxCpioFileBytes = uint.MaxValue;

    /// <summary>handover.json: a host configuration (<see cref="MaxConfigJsonBytes"/>, re-indented) and a few fields.</summary>
    public const int MaxHandoverBytes = 1 << 20;

    /// <summary>Kernel command line (x86 COMMAND_LINE_SIZE is 2048 including the NUL).</summary>
    public const int MaxCmdlineBytes = 2047;

    /// <summary>A boot ticket (freshness design §4): a payload of ~300 bytes, base64, and a signature.</summary>
    public const int MaxBootTicketBytes = 4 << 10;

    /// <summary>A ticket request (freshness design §3): two keys, a nonce, a class and a signature, ~250 bytes.</summary>
    public const int MaxTicketRequestBytes = 4 << 10;
}
