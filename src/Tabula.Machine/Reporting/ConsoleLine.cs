using System.Globalization;

namespace Tabula.Machine.Reporting;

/// <summary>
/// The one console-line format of every program on a machine (stboot and the relay agent):
/// <c>PROGRAM: KEY t=MSms DETAIL</c>, e.g. <c>tabula-boot: stage:network t=1487ms took=210ms nic=eth0 …</c> or
/// <c>tabula-relay: enroll t=9120ms machine=3f5a… fingerprint=1a2b-… state=awaiting</c>. PROGRAM names the writer,
/// KEY the event (<c>stage:NAME</c> when a stage is done, <c>FAILED</c>, <c>note:NAME</c>, or an event of the program's
/// own), t= the milliseconds since the program started, DETAIL space-separated <c>name=value</c> fields (a value with
/// spaces is in double quotes) and free words. <see cref="ConsoleWriter"/> writes it; <see cref="TryParse"/> is the one
/// parser the lab and the tests read it with.
/// </summary>
public sealed record ConsoleLine(string Program, string Key, TimeSpan At, string Detail)
{
    /// <summary>stboot's program name.</summary>
    public const string Boot = "tabula-boot";

    /// <summary>The relay agent's program name.</summary>
    public const string Relay = "tabula-relay";

    /// <summary>A longer line is not one of ours (a console line is read from a serial port byte stream).</summary>
    public const int MaxLength = 16 * 1024;

    const string Prefix = "tabula-";

    /// <summary>The line as printed.</summary>
    public override string ToString() =>
        $"{Program}: {Key} t={((long)At.TotalMilliseconds).ToString(CultureInfo.InvariantCulture)}ms {Detail}".TrimEnd();

    /// <summary>
    /// Reads a console line; null when it is not one of ours. Text before the program name is skipped (a serial console
    /// interleaves kernel output and carriage returns); never throws.
    /// </summary>
    public static ConsoleLine? TryParse(ReadOnlySpan<char> text)
    {
        if (text.Length > MaxLength)
            return null;
        int start = text.IndexOf(Prefix, StringComparison.Ordinal);
        if (start < 0)
            return null;
        text = text[start..].TrimEnd("\r\n");
        int colon = text.IndexOf(": ", StringComparison.Ordinal);
        if (colon <= Prefix.Length || !IsName(text[..colon]))
            return null;
        var rest = text[(colon + 2)..];
        int space = rest.IndexOf(' ');
        if (space <= 0)
            return null;
        var key = rest[..space];
        rest = rest[(space + 1)..];
        if (!rest.StartsWith("t=", StringComparison.Ordinal))
            return null;
        int end = rest.IndexOf(' ');
        var time = end < 0 ? rest : rest[..end];
        if (!time.EndsWith("ms", StringComparison.Ordinal)
            || !long.TryParse(time[2..^2], NumberStyles.None, CultureInfo.InvariantCulture, out long ms))
            return null;
        string detail = end < 0 ? "" : rest[(end + 1)..].ToString();
        return new ConsoleLine(text[..colon].ToString(), key.ToString(), TimeSpan.FromMilliseconds(ms), detail);
    }

    /// <summary>The value of the detail field <paramref name="name"/> (<c>name=value</c> or <c>name="a value"</c>), or null.</summary>
    public string? Field(string name)
    {
        var detail = Detail.AsSpan();
        for (int i = 0; i < detail.Length;)
        {
            int at = detail[i..].IndexOf(name, StringComparison.Ordinal);
            if (at < 0)
                return null;
            at += i;
            int valueStart = at + name.Length + 1;
            bool wordStart = at == 0 || detail[at - 1] == ' ';
            if (wordStart && valueStart <= detail.Length && detail[valueStart - 1] == '=')
            {
                if (valueStart < detail.Length && detail[valueStart] == '"')
                {
                    int close = detail[(valueStart + 1)..].IndexOf('"');
                    return close < 0 ? detail[(valueStart + 1)..].ToString() : detail.Slice(valueStart + 1, close).ToString();
                }
                int space = detail[valueStart..].IndexOf(' ');
                return (space < 0 ? detail[valueStart..] : detail.Slice(valueStart, space)).ToString();
            }
            i = at + 1;
        }
        return null;
    }

    /// <summary>True when this is <paramref name="program"/>'s <paramref name="key"/> event whose detail starts with the
    /// words <paramref name="detailPrefix"/>.</summary>
    public bool Is(string program, string key, string detailPrefix = "") =>
        Program == program && Key == key
        && (detailPrefix.Length == 0 || Detail == detailPrefix || Detail.StartsWith(detailPrefix + " ", StringComparison.Ordinal));

    static bool IsName(ReadOnlySpan<char> name)
    {
        foreach (char c in name)
            if (c is not (>= 'a' and <= 'z' or >= '0' and <= '9' or '-'))
                return false;
        return true;
    }
}

/// <summary>
/// What a test or the lab waits for on a console: <paramref name="Program"/>'s <paramref name="Key"/> event, optionally
/// with a detail that starts with <paramref name="DetailPrefix"/> (whole words).
/// </summary>
public sealed record ConsoleMarker(string Program, string Key, string DetailPrefix = "")
{
    /// <summary>A further condition on the parsed line (e.g. a field's value), or null.</summary>
    public Func<ConsoleLine, bool>? Where { get; init; }

    /// <summary>A raw console line is this event.</summary>
    public bool Matches(string line) =>
        ConsoleLine.TryParse(line) is { } parsed && parsed.Is(Program, Key, DetailPrefix) && (Where is null || Where(parsed));

    /// <summary>stboot's event.</summary>
    public static ConsoleMarker Boot(string key, string detailPrefix = "") => new(ConsoleLine.Boot, key, detailPrefix);

    /// <summary>The relay agent's event.</summary>
    public static ConsoleMarker Relay(string key, string detailPrefix = "") => new(ConsoleLine.Relay, key, detailPrefix);

    /// <summary>For messages: "tabula-relay: sync … add revision=3".</summary>
    public override string ToString() =>
        $"{Program}: {Key}{(DetailPrefix.Length > 0 ? " … " + DetailPrefix : "")}{(Where is null ? "" : " (and a condition)")}";
}
