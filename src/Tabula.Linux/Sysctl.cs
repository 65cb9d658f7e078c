using System.Globalization;

namespace Tabula.Linux;

/// <summary>
/// A kernel parameter under /proc/sys, named by its path segments so that interface names with dots
/// (eth0.100) need no escaping. Factories name the ones the relay sets.
/// </summary>
public sealed record SysctlKey
{
    SysctlKey(string[] segments) => Segments = segments;

    /// <summary>The path under /proc/sys, one segment per directory.</summary>
    public IReadOnlyList<string> Segments { get; }

    /// <summary>Dotted form for messages: net.ipv4.ip_forward.</summary>
    public override string ToString() => string.Join('.', Segments);

    /// <summary>A key from its segments; each is a plain directory or file name.</summary>
    public static SysctlKey Of(params string[] segments)
    {
        if (segments.Length == 0)
            throw new ArgumentException("a sysctl key has at least one segment");
        foreach (string segment in segments)
            if (string.IsNullOrEmpty(segment) || segment is "." or ".." || segment.Contains('/') || segment.Contains('\0') || segment.Length > 64)
                throw new ArgumentException($"'{segment}' is not a sysctl path segment");
        return new SysctlKey(segments);
    }

    /// <summary>net.ipv4.ip_forward: route IPv4 between interfaces.</summary>
    public static SysctlKey Ipv4Forward => Of("net", "ipv4", "ip_forward");

    /// <summary>net.ipv6.conf.INTERFACE.forwarding ("all" for every interface).</summary>
    public static SysctlKey Ipv6Forwarding(string device = "all") => Of("net", "ipv6", "conf", device, "forwarding");

    /// <summary>net.ipv4.conf.INTERFACE.rp_filter: 0 off, 1 strict, 2 loose.</summary>
    public static SysctlKey ReversePathFilter(string device) => Of("net", "ipv4", "conf", device, "rp_filter");

    /// <summary>net.ipv4.conf.INTERFACE.send_redirects.</summary>
    public static SysctlKey SendRedirects(string device) => Of("net", "ipv4", "conf", device, "send_redirects");
}

/// <summary>
/// Typed reads and writes of /proc/sys. The net.* tree belongs to the network namespace of the thread that opens
/// the file, so inside <see cref="Namespaces.RunInside{T}"/> it reads and writes that namespace's values.
/// </summary>
/// <param name="root">/proc/sys, or a directory standing in for it in tests.</param>
public sealed class Sysctl(string root = "/proc/sys")
{
    /// <summary>The values longest accepted from a file. /proc/sys values are one line. Arbitrary limit.</summary>
    public const int MaxValueBytes = 4096;

    /// <summary>The machine's /proc/sys.</summary>
    public static Sysctl Proc { get; } = new();

    /// <summary>The value, whitespace trimmed.</summary>
    public string Read(SysctlKey key)
    {
        string path = PathOf(key);
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1);
        byte[] buffer = new byte[MaxValueBytes + 1];
        int total = 0, n;
        while (total < buffer.Length && (n = stream.Read(buffer, total, buffer.Length - total)) > 0)
            total += n;
        if (total > MaxValueBytes)
            throw new KernelDataException(KernelDataError.NetlinkAttributeSize, $"sysctl {key} longer than {MaxValueBytes} bytes");
        return System.Text.Encoding.ASCII.GetString(buffer, 0, total).Trim();
    }

    /// <summary>An integer value; throws <see cref="KernelDataException"/> when it is not one.</summary>
    public int ReadInt32(SysctlKey key)
    {
        string text = Read(key);
        return int.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int value)
            ? value
            : throw new KernelDataException(KernelDataError.NetlinkAttributeSize, $"sysctl {key} is not an integer");
    }

    /// <summary>Writes <paramref name="value"/> (a newline is added); the kernel refuses bad values with EINVAL.</summary>
    public void Write(SysctlKey key, string value)
    {
        string path = PathOf(key);
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            byte[] bytes = System.Text.Encoding.ASCII.GetBytes(value + "\n");
            stream.Write(bytes);
        }
        catch (IOException e) when (e.HResult is > 0 and < 4096)
        {
            throw new LinuxException($"write({path}, \"{value}\")", e.HResult);
        }
    }

    /// <summary>Writes an integer.</summary>
    public void Write(SysctlKey key, int value) => Write(key, value.ToString(CultureInfo.InvariantCulture));

    string PathOf(SysctlKey key)
    {
        ArgumentNullException.ThrowIfNull(key);
        return Path.Combine([root, .. key.Segments]);
    }
}
