namespace Tabula.Packaging;

/// <summary>
/// The provisioning server's URL space for OS packages, below one root (the server's, or a mirror's path prefix): content-addressed
/// descriptors and archives under <c>ospkg/HEX.json|zip</c>, pointers under <c>channels/</c>, <c>groups/</c> and <c>machines/</c>.
/// Tabula.Provisioning serves and exports it (its UrlLayout); stboot reads it to fetch the package its boot ticket names
/// (<see cref="ContentAddressedDescriptor"/>). The one owner of these paths.
/// </summary>
public static class PackageUrlLayout
{
    /// <summary>The archive whose SHA-256 is <paramref name="archive"/>.</summary>
    public static string Archive(Sha256Digest archive) => $"ospkg/{archive.Hex}.zip";

    /// <summary>The descriptor of that archive.</summary>
    public static string Descriptor(Sha256Digest archive) => $"ospkg/{archive.Hex}.json";

    /// <summary>A channel's descriptor (what its machines' ospkg_pointer names).</summary>
    public static string ChannelDescriptor(string channel) => $"channels/{channel}.json";

    /// <summary>A channel's archive.</summary>
    public static string ChannelArchive(string channel) => $"channels/{channel}.zip";

    /// <summary>A machine group's descriptor.</summary>
    public static string GroupDescriptor(string group) => $"groups/{group}/ospkg.json";

    /// <summary>The per-machine descriptor (chosen by the requesting machine).</summary>
    public const string MachineDescriptor = "machines/ospkg.json";

    /// <summary>
    /// The content-addressed descriptor of <paramref name="archive"/> beside <paramref name="pointer"/>, when the pointer is one of
    /// this layout's descriptors (<c>…/channels/NAME.json</c>, <c>…/groups/GROUP/ospkg.json</c>, <c>…/machines/ospkg.json</c>,
    /// <c>…/ospkg/HEX.json</c>): the same scheme, host, port, credentials and root, no query. Null for any other pointer (a plain
    /// file, as upstream System Transparency lays packages out): there is nothing to resolve against.
    /// </summary>
    public static Uri? ContentAddressedDescriptor(Uri pointer, Sha256Digest archive)
    {
        ArgumentNullException.ThrowIfNull(pointer);
        if (!pointer.IsAbsoluteUri)
            return null;
        string path = pointer.AbsolutePath;
        string[] segments = path.Split('/');
        int n = segments.Length;   // segments[0] is "" (the path starts with '/')
        int strip = n >= 3 && segments[^2] is "channels" or "ospkg" && segments[^1].Length > ".json".Length && segments[^1].EndsWith(".json", StringComparison.Ordinal) ? 2
            : n >= 3 && segments[^2] == "machines" && segments[^1] == "ospkg.json" ? 2
            : n >= 4 && segments[^3] == "groups" && segments[^2].Length > 0 && segments[^1] == "ospkg.json" ? 3
            : 0;
        if (strip == 0)
            return null;
        string root = string.Join('/', segments[..(n - strip)]) + "/";
        return new UriBuilder(pointer) { Path = root + Descriptor(archive), Query = "", Fragment = "" }.Uri;
    }
}
