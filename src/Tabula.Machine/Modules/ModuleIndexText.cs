using System.Text;

namespace Tabula.Machine.Modules;

/// <summary>The line reader both index parsers share: UTF-8, bounded in bytes, lines and line length.</summary>
internal static class ModuleIndexText
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>The lines of <paramref name="bytes"/> (LF-separated, a final CR dropped), each checked.</summary>
    public static IEnumerable<string> Lines(ReadOnlyMemory<byte> bytes, string what)
    {
        if (bytes.Length > MachineLimits.MaxModuleIndexBytes)
            ModuleIndexException.Throw(ModuleIndexError.TooLarge, $"{what}: {bytes.Length} bytes; the limit is {MachineLimits.MaxModuleIndexBytes}");
        return Split(bytes, what);
    }

    static IEnumerable<string> Split(ReadOnlyMemory<byte> bytes, string what)
    {
        int start = 0, number = 0;
        while (start < bytes.Length)
        {
            int end = bytes.Span[start..].IndexOf((byte)'\n');
            end = end < 0 ? bytes.Length : start + end;
            if (++number > MachineLimits.MaxModuleIndexLines)
                ModuleIndexException.Throw(ModuleIndexError.TooLarge, $"{what}: over {MachineLimits.MaxModuleIndexLines} lines");
            yield return Decode(bytes.Span[start..end], what, number);
            start = end + 1;
        }
    }

    /// <summary>One line as text: bounded, strict UTF-8, no control characters but tabs.</summary>
    public static string Decode(ReadOnlySpan<byte> line, string what, int number)
    {
        if (line.Length > 0 && line[^1] == (byte)'\r')
            line = line[..^1];
        if (line.Length > MachineLimits.MaxModuleIndexLineBytes)
            ModuleIndexException.Throw(ModuleIndexError.LineTooLong, $"{what} line {number}: {line.Length} bytes");
        foreach (byte b in line)
            if (b < 0x20 && b != (byte)'\t' || b == 0x7F)
                ModuleIndexException.Throw(ModuleIndexError.NotText, $"{what} line {number}: control character 0x{b:x2}");
        try { return Strict.GetString(line); }
        catch (DecoderFallbackException) { ModuleIndexException.Throw(ModuleIndexError.NotText, $"{what} line {number}: not UTF-8"); return ""; }
    }

    /// <summary>Reads a file of at most <see cref="MachineLimits.MaxModuleIndexBytes"/> bytes.</summary>
    public static byte[] ReadFile(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        if (stream.Length > MachineLimits.MaxModuleIndexBytes)
            ModuleIndexException.Throw(ModuleIndexError.TooLarge, $"{path}: {stream.Length} bytes; the limit is {MachineLimits.MaxModuleIndexBytes}");
        var bytes = new byte[stream.Length];
        stream.ReadExactly(bytes);
        return bytes;
    }
}
