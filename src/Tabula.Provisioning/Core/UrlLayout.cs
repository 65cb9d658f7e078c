using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// The URL space, shared by the server and the static export so that a mirror of the export answers the same
/// paths. Objects are content-addressed (threat checklist #11): a mirror can serve stale pointers, never other
/// bytes under a digest's name without the signatures failing.
/// </summary>
public static class UrlLayout
{
    // The package paths are Tabula.Packaging's (stboot resolves a ticket's digest in the same layout).
    public static string Archive(Sha256Digest archive) => PackageUrlLayout.Archive(archive);
    public static string Descriptor(Sha256Digest archive) => PackageUrlLayout.Descriptor(archive);
    public static string ChannelDescriptor(string channel) => PackageUrlLayout.ChannelDescriptor(channel);
    public static string ChannelArchive(string channel) => PackageUrlLayout.ChannelArchive(channel);
    public static string GroupDescriptor(string group) => PackageUrlLayout.GroupDescriptor(group);
    public static string GroupHostConfig(string group) => $"groups/{group}/host-config.json";

    /// <summary>The <c>os_pkg_url</c> written into served descriptors: absolute under <paramref name="publicBaseUrl"/>
    /// when configured (stboot before v0.4 needs an absolute URL ending in .zip), else root-relative, which stboot
    /// v0.4+ resolves against the descriptor URL (formats §1.2).</summary>
    public static string OsPkgUrl(Sha256Digest archive, string? publicBaseUrl) =>
        string.IsNullOrEmpty(publicBaseUrl) ? "/" + Archive(archive) : publicBaseUrl.TrimEnd('/') + "/" + Archive(archive);
}
