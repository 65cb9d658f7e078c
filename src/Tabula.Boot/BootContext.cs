using Microsoft.Win32.SafeHandles;
using Tabula.Packaging;

namespace Tabula.Boot;

/// <summary>The configuration read at start: trust policy and host configuration (with its raw bytes for the hand-over).</summary>
internal sealed record BootConfiguration(TrustPolicyFolder Trust, HostConfig Host, byte[] HostConfigJson, string HostConfigSource);

/// <summary>
/// A downloaded (or embedded) package not yet verified: the descriptor, the archive in a RAM-backed file (owned
/// here, disposed with it) and the archive's SHA-256, computed once while it was copied in.
/// </summary>
internal sealed class FetchedPackage(Descriptor descriptor, SafeFileHandle archive, long length, Sha256Digest sha256,
    FetchMethod source, string? descriptorUrl, int pointerIndex) : IDisposable
{
    public Descriptor Descriptor { get; } = descriptor;
    public SafeFileHandle Archive { get; } = archive;
    public long Length { get; } = length;
    public Sha256Digest Sha256 { get; } = sha256;

    /// <summary>Where it came from: the network (an ospkg_pointer entry) or the initramfs.</summary>
    public FetchMethod Source { get; } = source;

    /// <summary>Where the descriptor came from (userinfo removed), or the /ospkg path.</summary>
    public string? DescriptorUrl { get; } = descriptorUrl;

    /// <summary>Which ospkg_pointer entry this came from (a refused package makes the next entry be tried).</summary>
    public int PointerIndex { get; } = pointerIndex;

    /// <summary>The descriptor exactly as fetched (measured into PCR 12).</summary>
    public byte[] DescriptorBytes { get; init; } = [];

    /// <summary>The archive's file name (the last segment of its URL, or NAME.zip): the OspkgArchive event's data, as ST.</summary>
    public string ArchiveName { get; init; } = "";

    /// <summary>How long each download took, for the fetch stage's line ("descriptor=12ms archive=2900ms"), or empty.</summary>
    public string Timing { get; init; } = "";

    public void Dispose() => Archive.Dispose();
}

/// <summary>What one boot carries from state to state, plus the timeline.</summary>
internal sealed class BootContext(BootEnvironment environment, BootOptions options, BootLog log)
{
    public BootEnvironment Environment { get; } = environment;
    public BootOptions Options { get; } = options;
    public BootLog Log { get; } = log;

    public BootConfiguration? Configuration { get; set; }

    /// <summary>Firmware, Secure Boot and lockdown, read at the config stage (<see cref="PlatformProbe"/>).</summary>
    public HandoverPlatform? Platform { get; set; }

    /// <summary>Failed rounds so far.</summary>
    public int FailedRounds { get; set; }

    /// <summary>Stage name and duration, in order (repeated stages appear once per run).</summary>
    public List<(string Stage, TimeSpan Took)> Timeline { get; } = [];

    /// <summary>HTTP, made once the trust policy is known.</summary>
    public HttpMessageInvoker? Http { get; set; }

    /// <summary>This attempt's ticket exchange (nonce, ticket), under a freshness policy; null between attempts.</summary>
    public Freshness.FreshnessRound? Round { get; set; }

    /// <summary>What the freshness check decided for the package about to be kexeced (for the hand-over), or null.</summary>
    public HandoverFreshness? Freshness { get; set; }
    public Fetch.PinnedTls? Tls { get; set; }

    /// <summary>Every measurement extended so far in this boot (it only grows: PCRs cannot be taken back), and whether
    /// the authority and identity events went in already (they go in once per boot, the package's once per hand-over).</summary>
    public Measuring.BootMeasurements Measurements { get; } = new();

    /// <summary>What the measure stage decided for the hand-over, or null before it ran.</summary>
    public HandoverMeasurement? Measurement { get; set; }
}
