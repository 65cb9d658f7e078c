using Tabula.Packaging;

namespace Tabula.Provisioning.Core;

/// <summary>
/// The URL space, shared by the server and the static export so that a mirror of the export answers the same
/// paths. Objects are content-addressed (threat checklist #11): a mirror can serve stale pointers, never other
/// bytes under a digest's name without the signatures failing. The package paths are Tabula.Packaging's
/// <see cref="PackageUrlLayout"/> (stboot and <c>relay attest</c> resolve a digest in the same layout); this class adds
/// what only the provisioning server serves.
/// </summary>
public static class UrlLayout
{
    public static string GroupHostConfig(string group) => $"groups/{group}/host-config.json";

    /// <summary>The <c>os_pkg_url</c> written into served descriptors: absolute under <paramref name="publicBaseUrl"/>
    /// when configured (stboot before v0.4 needs an absolute URL ending in .zip), else root-relative, which stboot
    /// v0.4+ resolves against the descriptor URL (formats §1.2).</summary>
    public static string OsPkgUrl(Sha256Digest archive, string? publicBaseUrl) =>
        string.IsNullOrEmpty(publicBaseUrl) ? "/" + PackageUrlLayout.Archive(archive) : publicBaseUrl.TrimEnd('/') + "/" + PackageUrlLayout.Archive(archive);
}
