namespace Tabula.Boot.Fetch;

/// <summary>URL rules of the network fetch method (formats reference §1.2, §5 step 3).</summary>
internal static class Urls
{
    /// <summary>An absolute http or https URL, or null.</summary>
    public static Uri? ParsePointer(string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps)
            ? uri : null;

    /// <summary>os_pkg_url resolved against the descriptor URL (RFC 3986 reference resolution, st-1.1.0+), or null.</summary>
    public static Uri? ResolveArchive(Uri descriptorUrl, string osPackageUrl)
    {
        if (string.IsNullOrWhiteSpace(osPackageUrl))
            return null;
        return Uri.TryCreate(descriptorUrl, osPackageUrl, out var resolved)
               && (resolved.Scheme == Uri.UriSchemeHttp || resolved.Scheme == Uri.UriSchemeHttps)
            ? resolved : null;
    }

    /// <summary>The URL for the console and logs: userinfo (Basic-auth credentials) removed.</summary>
    public static string Redact(Uri uri) =>
        uri.UserInfo.Length == 0 ? uri.OriginalString : new UriBuilder(uri) { UserName = "", Password = "" }.Uri.ToString();

    /// <summary>The same for text that may not even parse.</summary>
    public static string Redact(string text)
    {
        if (Uri.TryCreate(text, UriKind.Absolute, out var uri))
            return Redact(uri);
        int at = text.IndexOf('@');
        return at < 0 ? text : "…" + text[at..];
    }
}
