using System.Buffers;
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Win32.SafeHandles;
using Tabula.Boot.Fetch;
using Tabula.Linux;
using Tabula.Packaging;

namespace Tabula.Boot.States;

/// <summary>
/// Gets a descriptor and its archive, starting at ospkg_pointer entry <paramref name="first"/>.
/// Network: for each URL in order, GET the descriptor, parse it, resolve os_pkg_url against the descriptor URL,
/// GET the archive into a memfd while hashing it; the first complete download goes on to verification, each failed
/// URL is reported on one line and the next is tried. With a boot ticket that verifies with ticket_root.pem, the package it
/// names is fetched first, content-addressed beside a pointer in the provisioning server's layout
/// (<see cref="PackageUrlLayout.ContentAddressedDescriptor"/>, e.g. <c>…/ospkg/HEX.json</c> beside <c>…/channels/stable.json</c>):
/// the controller names each machine's package (a rollout pins it), which the channel may not name now. The pointer itself
/// is the fallback (a mirror without the object, a pointer in another layout). Where the bytes came from decides nothing:
/// they still verify against the signers, and the ticket check names the digest. Initramfs: /ospkg/NAME.json and
/// /ospkg/NAME.zip, NAME being the pointer without its extension.
/// </summary>
internal sealed class FetchPackage(int first) : BootState
{
    public const string EmbeddedDirectory = "/" + InitramfsLayout.EmbeddedPackagesDirectory;

    public int First { get; } = first;

    public override string Name => "fetch";

    public override Transition Run(BootContext context)
    {
        var clock = Stopwatch.StartNew();
        var configuration = context.Configuration!;
        if (First == 0 && configuration.Trust.Policy.Freshness is not null && context.Round is null)
            return Transition.To(new RequestTicket());   // a new attempt: its ticket first
        (FetchedPackage? package, BootFailure? failure) = configuration.Trust.Policy.FetchMethod == FetchMethod.Network
            ? FromNetwork(context, configuration)
            : FromInitramfs(context, configuration);
        if (package is null)
            return Transition.To(new Recover(failure!, new FetchPackage(0)));
        context.Log.StageDone(Name, clock.Elapsed,
            $"url={package.DescriptorUrl} bytes={package.Length} {(package.Timing.Length > 0 ? package.Timing + " " : "")}" +
            $"ospkg_sha256={package.Sha256.Hex} signatures={package.Descriptor.Count}");
        return Transition.To(new VerifyPackage(package));
    }

    (FetchedPackage?, BootFailure?) FromNetwork(BootContext context, BootConfiguration configuration)
    {
        var env = context.Environment;
        var downloader = new Downloader(context.Http!, context.Options, context.Log, env.Sleep, context.Tls);
        DateTimeOffset deadline = env.Time.GetUtcNow() + BootLimits.RoundDeadline;
        var pointers = configuration.Host.OsPackagePointers;
        var named = TicketDigest(context, configuration);
        BootFailure? last = null;
        for (int i = First; i < pointers.Count; i++)
        {
            if (Urls.ParsePointer(pointers[i]) is not { } descriptorUrl)
            {
                last = new BootFailure(Name, FailureReason.InvalidUrl, "ospkg_pointer entry is not an absolute http(s) URL", Urls.Redact(pointers[i]));
                context.Log.SourceFailed(last);
                continue;
            }
            if (named is { } digest && PackageUrlLayout.ContentAddressedDescriptor(descriptorUrl, digest) is { } byDigest)
            {
                var (ticketed, missed) = FromUrl(context, downloader, byDigest, i, deadline);
                if (ticketed is not null)
                    return (ticketed, null);
                context.Log.SourceFailed(missed!);   // then the pointer itself
            }
            var (package, failure) = FromUrl(context, downloader, descriptorUrl, i, deadline);
            if (package is not null)
                return (package, null);
            last = failure!;
            if (i + 1 < pointers.Count)
                context.Log.SourceFailed(last);
        }
        return (null, last ?? new BootFailure(Name, FailureReason.InvalidUrl, "no ospkg_pointer entry left to try"));
    }

    /// <summary>The digest this attempt's ticket names, when it parses and its signature verifies with ticket_root.pem; else null
    /// (no ticket, no policy: the pointer alone). The nonce, machine and floors are checked after the verification as always.</summary>
    static Sha256Digest? TicketDigest(BootContext context, BootConfiguration configuration)
    {
        if (context.Round?.Ticket is not { } bytes || configuration.Trust.TicketRoot is not { } root)
            return null;
        try
        {
            var ticket = BootTicket.Parse(bytes);
            return ticket.VerifySignature(root) ? ticket.Payload.PackageSha256 : null;
        }
        catch (BootTicketException) { return null; }
    }

    (FetchedPackage?, BootFailure?) FromUrl(BootContext context, Downloader downloader, Uri descriptorUrl, int index, DateTimeOffset deadline)
    {
        var time = context.Environment.Time;
        using var descriptorBytes = new MemoryStream();
        var (got, failure) = downloader.Get("descriptor", descriptorUrl, descriptorBytes, BootLimits.MaxDescriptorBytes, deadline, time);
        if (got is null)
            return (null, failure);
        TimeSpan descriptorTook = got.Took;
        Descriptor descriptor;
        try { descriptor = Descriptor.Parse(descriptorBytes.GetBuffer().AsSpan(0, (int)descriptorBytes.Length)); }
        catch (PackageFormatException e)
        {
            return (null, new BootFailure(Name, FailureReason.DescriptorInvalid, e.Message, Urls.Redact(descriptorUrl)));
        }
        if (Urls.ResolveArchive(descriptorUrl, descriptor.OsPackageUrl) is not { } archiveUrl)
            return (null, new BootFailure(Name, FailureReason.InvalidUrl,
                $"descriptor os_pkg_url \"{Urls.Redact(descriptor.OsPackageUrl)}\" does not resolve to an http(s) URL", Urls.Redact(descriptorUrl)));

        SafeFileHandle archive = MemoryFile.Create("ospkg.zip");
        try
        {
            using var stream = new HandleStream(archive);
            (got, failure) = downloader.Get("archive", archiveUrl, stream, BootLimits.MaxArchiveBytes, deadline, time);
            if (got is null)
            {
                archive.Dispose();
                return (null, failure);
            }
            return (new FetchedPackage(descriptor, archive, got.Length, got.Sha256, FetchMethod.Network, Urls.Redact(descriptorUrl), index)
            {
                DescriptorBytes = descriptorBytes.ToArray(),
                ArchiveName = Path.GetFileName(archiveUrl.AbsolutePath),
                Timing = $"descriptor={(long)descriptorTook.TotalMilliseconds}ms archive={(long)got.Took.TotalMilliseconds}ms",
            }, null);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    (FetchedPackage?, BootFailure?) FromInitramfs(BootContext context, BootConfiguration configuration)
    {
        string pointer = configuration.Host.OsPackagePointers[0];
        string name = Path.GetFileNameWithoutExtension(pointer);
        if (name.Length == 0 || pointer.Contains('/') || pointer.Contains('\\') || name is "." or "..")
            return (null, new BootFailure(Name, FailureReason.InvalidUrl, $"ospkg_pointer \"{pointer}\" is not a file name in {EmbeddedDirectory}"));
        string descriptorPath = $"{EmbeddedDirectory}/{name}.json", archivePath = $"{EmbeddedDirectory}/{name}.zip";
        string descriptorFile = context.Environment.PathOf(descriptorPath), archiveFile = context.Environment.PathOf(archivePath);
        if (!File.Exists(descriptorFile) || !File.Exists(archiveFile))
            return (null, new BootFailure(Name, FailureReason.PackageFileMissing, $"{descriptorPath} or {archivePath} is missing from the image"));
        Descriptor descriptor;
        byte[] descriptorBytes;
        try { descriptor = Descriptor.Parse(descriptorBytes = TrustPolicyFolder.ReadLimited(descriptorFile, BootLimits.MaxDescriptorBytes)); }
        catch (PackageFormatException e) { return (null, new BootFailure(Name, FailureReason.DescriptorInvalid, e.Message, descriptorPath)); }

        // Same path as a download: copy into a memfd while hashing, so what is verified is what is extracted.
        SafeFileHandle archive = MemoryFile.Create("ospkg.zip");
        try
        {
            using var source = new FileStream(archiveFile, FileMode.Open, FileAccess.Read, FileShare.Read, bufferSize: 0);
            if (source.Length > BootLimits.MaxArchiveBytes)
            {
                archive.Dispose();
                return (null, new BootFailure(Name, FailureReason.TooLarge, $"{archivePath} is over {BootLimits.MaxArchiveBytes} bytes"));
            }
            using var destination = new HandleStream(archive);
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            byte[] buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
            long total = 0;
            try
            {
                int n;
                while ((n = source.Read(buffer)) > 0)
                {
                    hash.AppendData(buffer, 0, n);
                    destination.Write(buffer, 0, n);
                    total += n;
                }
            }
            finally { ArrayPool<byte>.Shared.Return(buffer); }
            return (new FetchedPackage(descriptor, archive, total, Sha256Digest.FromBytes(hash.GetHashAndReset()), FetchMethod.Initramfs, descriptorPath, 0)
            {
                DescriptorBytes = descriptorBytes, ArchiveName = name + ".zip",
            }, null);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }
}
