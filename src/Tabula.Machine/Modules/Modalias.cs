namespace Tabula.Machine.Modules;

/// <summary>
/// Device modaliases (<c>/sys/bus/*/devices/*/modalias</c>, e.g. <c>pci:v00001AF4d00001000sv00001AF4sd00000001bc02sc00i00</c>)
/// and the glob patterns of modules.alias that match them, with the semantics of the kernel's and kmod's fnmatch
/// (no flags): <c>*</c> any run of characters, <c>?</c> one character, <c>[abc]</c>, <c>[a-z]</c>, <c>[!…]</c> or
/// <c>[^…]</c> one character of (or not of) a set; everything else literal. No backslash escapes: depmod writes none.
/// </summary>
public static class Modalias
{
    static readonly HashSet<string> NotDevices = new(StringComparer.Ordinal) { "devname", "symbol" };

    /// <summary>
    /// Checks a modalias read from sysfs: non-empty, at most <see cref="MachineLimits.MaxModaliasBytes"/>, printable
    /// ASCII without white space or glob characters, with a "bus:" prefix. Returns it without the trailing newline.
    /// Throws <see cref="ModuleIndexException"/> (<see cref="ModuleIndexError.ModaliasMalformed"/>).
    /// </summary>
    public static string Parse(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length > 0 && bytes[^1] == (byte)'\n')
            bytes = bytes[..^1];
        if (bytes.Length == 0 || bytes.Length > MachineLimits.MaxModaliasBytes)
            ModuleIndexException.Throw(ModuleIndexError.ModaliasMalformed, $"a modalias of {bytes.Length} bytes");
        foreach (byte b in bytes)
            if (b is <= 0x20 or >= 0x7F or (byte)'*' or (byte)'?' or (byte)'[')
                ModuleIndexException.Throw(ModuleIndexError.ModaliasMalformed, $"a modalias with the byte 0x{b:x2}");
        int colon = bytes.IndexOf((byte)':');
        if (colon <= 0)
            ModuleIndexException.Throw(ModuleIndexError.ModaliasMalformed, "a modalias without \"bus:\"");
        return System.Text.Encoding.ASCII.GetString(bytes);
    }

    /// <summary>
    /// The bus a device alias pattern is for: the text before the first ':' without glob characters
    /// (<c>acpi*:…</c> → "acpi"); null when there is no ':' or the alias is a <c>devname:</c>/<c>symbol:</c> entry.
    /// </summary>
    public static string? BusOf(string pattern)
    {
        int colon = pattern.IndexOf(':');
        if (colon <= 0) return null;
        string bus = pattern[..colon].TrimEnd('*', '?');
        return bus.Length == 0 || bus.AsSpan().IndexOfAny('*', '?', '[') >= 0 || NotDevices.Contains(bus) ? null : bus;
    }

    /// <summary>True when every '[' of <paramref name="pattern"/> is closed.</summary>
    public static bool IsValidPattern(string pattern)
    {
        for (int i = 0; i < pattern.Length; i++)
            if (pattern[i] == '[' && ClassEnd(pattern, i) < 0)
                return false;
        return true;
    }

    /// <summary>
    /// fnmatch(<paramref name="pattern"/>, <paramref name="text"/>, 0). Linear backtracking over the last '*' only, so
    /// time is O(pattern × text) at worst; an unclosed '[' never matches.
    /// </summary>
    public static bool Matches(string pattern, string text)
    {
        int p = 0, t = 0, starP = -1, starT = 0;
        while (t < text.Length)
        {
            if (p < pattern.Length && pattern[p] == '*')
            {
                starP = ++p;
                starT = t;
                continue;
            }
            if (p < pattern.Length && Single(pattern, p, text[t], out int next))
            {
                p = next;
                t++;
                continue;
            }
            if (starP < 0)
                return false;
            p = starP;
            t = ++starT;
        }
        while (p < pattern.Length && pattern[p] == '*') p++;
        return p == pattern.Length;
    }

    // Does the one-character element of the pattern at p match c? next: the pattern index after the element.
    static bool Single(string pattern, int p, char c, out int next)
    {
        next = p + 1;
        switch (pattern[p])
        {
            case '?':
                return true;
            case '[':
                int end = ClassEnd(pattern, p);
                if (end < 0) return false;
                next = end + 1;
                return InClass(pattern, p + 1, end, c);
            default:
                return pattern[p] == c;
        }
    }

    // The index of the ']' closing the class that starts at open, or -1. A ']' right after '[' or '[!' is literal.
    static int ClassEnd(string pattern, int open)
    {
        int i = open + 1;
        if (i < pattern.Length && pattern[i] is '!' or '^') i++;
        if (i < pattern.Length && pattern[i] == ']') i++;
        for (; i < pattern.Length; i++)
            if (pattern[i] == ']')
                return i;
        return -1;
    }

    static bool InClass(string pattern, int start, int end, char c)
    {
        bool negate = pattern[start] is '!' or '^';
        if (negate) start++;
        bool found = false;
        for (int i = start; i < end; i++)
        {
            if (i + 2 < end && pattern[i + 1] == '-')
            {
                if (c >= pattern[i] && c <= pattern[i + 2]) found = true;
                i += 2;
            }
            else if (pattern[i] == c)
                found = true;
        }
        return found != negate;
    }
}
