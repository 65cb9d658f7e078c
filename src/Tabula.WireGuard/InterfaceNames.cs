namespace Tabula.WireGuard;

/// <summary>Interface name rules shared by both implementations (dev_valid_name in net/core/dev.c).</summary>
internal static class InterfaceNames
{
    /// <summary>Throws <see cref="ArgumentException"/> unless 1-15 printable ASCII characters, no '/', ':' or whitespace, not "." or "..".</summary>
    public static string Validate(string name, string parameter)
    {
        ArgumentNullException.ThrowIfNull(name, parameter);
        if (name.Length is 0 or > Limits.MaxInterfaceNameLength || name is "." or ".." ||
            name.AsSpan().ContainsAnyExceptInRange('!', '~') || name.AsSpan().ContainsAny('/', ':'))
            throw new ArgumentException(
                $"an interface name is 1-{Limits.MaxInterfaceNameLength} printable ASCII characters without '/', ':' or spaces",
                parameter);
        return name;
    }
}
