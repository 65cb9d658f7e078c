using System.Text.Json;
using Tabula.Linux;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Storage;
using Tabula.Packaging;

namespace Tabula.Provisioning.Export;

/// <summary>What an export wrote.</summary>
public sealed record ExportSummary(int Packages, int Channels, int Groups, long Bytes);

/// <summary>
/// Writes the store as a static tree with the server's URL layout (<see cref="UrlLayout"/>), for any web server or
/// CDN to mirror. Mirrors carry no trust: the descriptor signatures do. Objects are written first and pointers
/// (channels, groups) last, each file via a temporary name and a rename, so a mirror syncing mid-export never
/// sees a channel naming an archive it does not have. Archives are hard-linked when the export sits on the
/// store's file system, else copied.
/// </summary>
public static class StaticExporter
{
    public static async Task<ExportSummary> ExportAsync(FileStore store, string directory, CancellationToken ct)
    {
        directory = Path.GetFullPath(directory);
        Directory.CreateDirectory(directory);
        long bytes = 0;
        var packages = await store.ListPackagesAsync(ct);
        foreach (var p in packages)
        {
            var archive = Digest(p.ArchiveSha256);
            bytes += await PlaceAsync(store, archive, Path.Combine(directory, PackageUrlLayout.Archive(archive)), ct, immutable: true);
            bytes += await PlaceAsync(store, Digest(p.DescriptorSha256), Path.Combine(directory, PackageUrlLayout.Descriptor(archive)), ct, immutable: true);
        }
        var channels = await store.ListChannelsAsync(ct);
        foreach (var c in channels)
        {
            var package = await store.FindPackageAsync(Digest(c.ArchiveSha256), ct)
                          ?? throw new ProvisioningException(ProvisioningError.StoreFailed,
                              $"channel {c.Name} points at an unknown package");
            bytes += await PlaceAsync(store, Digest(package.DescriptorSha256),
                Path.Combine(directory, PackageUrlLayout.ChannelDescriptor(c.Name)), ct);
            bytes += await PlaceAsync(store, Digest(package.ArchiveSha256),
                Path.Combine(directory, PackageUrlLayout.ChannelArchive(c.Name)), ct);
        }
        var groups = await store.ListGroupsAsync(ct);
        foreach (var g in groups)
        {
            if (channels.FirstOrDefault(c => c.Name == g.Channel) is { } c
                && await store.FindPackageAsync(Digest(c.ArchiveSha256), ct) is { } package)
                bytes += await PlaceAsync(store, Digest(package.DescriptorSha256),
                    Path.Combine(directory, PackageUrlLayout.GroupDescriptor(g.Id)), ct);
            if (g.HostConfig is { } config)
            {
                byte[] json = JsonSerializer.SerializeToUtf8Bytes(config, ProvisioningJsonContext.Default.JsonElement);
                await WriteAsync(Path.Combine(directory, UrlLayout.GroupHostConfig(g.Id)), json, ct);
                bytes += json.Length;
            }
        }
        return new ExportSummary(packages.Count, channels.Count, groups.Count, bytes);
    }

    static async Task<long> PlaceAsync(FileStore store, Sha256Digest digest, string target, CancellationToken ct,
        bool immutable = false)
    {
        var stored = store.FindObject(digest)
                     ?? throw new ProvisioningException(ProvisioningError.StoreFailed, $"object {digest} is missing");
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        if (immutable && File.Exists(target) && new FileInfo(target).Length == stored.Length)
            return stored.Length; // content-addressed and already complete from an earlier export
        string temp = target + ".tmp-" + Guid.NewGuid().ToString("N");
        try
        {
            if (!(OperatingSystem.IsLinux() && FileSystem.TryCreateHardLink(stored.PhysicalPath, temp)))
            {
                await using var source = File.OpenRead(stored.PhysicalPath);
                await using var destination = new FileStream(temp, FileMode.CreateNew, FileAccess.Write);
                await source.CopyToAsync(destination, ct);
                destination.Flush(flushToDisk: true);
            }
            File.Move(temp, target, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
        return stored.Length;
    }

    static async Task WriteAsync(string target, byte[] bytes, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        string temp = target + ".tmp-" + Guid.NewGuid().ToString("N");
        await File.WriteAllBytesAsync(temp, bytes, ct);
        File.Move(temp, target, overwrite: true);
    }

    static Sha256Digest Digest(string hex) =>
        Sha256Digest.TryParse(hex, out var d)
            ? d
            : throw new ProvisioningException(ProvisioningError.StoreFailed, "a record holds a malformed digest");
}
