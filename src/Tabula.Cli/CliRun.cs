using System.Globalization;
using System.Security.Cryptography;
using Tabula.Packaging;

namespace Tabula.Cli;

/// <summary>Exit codes shared by every verb.</summary>
internal static class ExitCode
{
    public const int Ok = 0;
    public const int Rejected = 1;
    public const int BadInput = 2;
}

/// <summary>
/// Runs a verb body and turns every expected failure into one line on stderr and exit code 2:
/// bad input never shows a stack trace.
/// </summary>
internal static class CliRun
{
    public static int Guard(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (Exception e) when (IsExpected(e))
        {
            Console.Error.WriteLine($"tabula: error: {OneLine(e.Message)}");
            return ExitCode.BadInput;
        }
    }

    public static async Task<int> GuardAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (IsExpected(e) || e is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"tabula: error: {OneLine(e.Message)}");
            return ExitCode.BadInput;
        }
    }

    /// <summary>Failures that are the user's input or environment, reported in one line (exit 2), never a stack trace.</summary>
    private static bool IsExpected(Exception e) =>
        e is PackageFormatException or IOException or UnauthorizedAccessException or ArgumentException
          or CryptographicException or InvalidOperationException or UsageException or FormatException;

    public static void Warn(string message) => Console.Error.WriteLine($"tabula: warning: {message}");

    internal static string OneLine(string message) => message.ReplaceLineEndings(" ");

    /// <summary>Parses an RFC 3339 time; an offset (Z or ±hh:mm) is required so the meaning is unambiguous.</summary>
    public static DateTimeOffset ParseTime(string text, string option)
    {
        if (DateTimeOffset.TryParseExact(text, ["yyyy-MM-dd'T'HH:mm:ssK", "yyyy-MM-dd'T'HH:mm:ss.FFFFFFFK"],
                CultureInfo.InvariantCulture, DateTimeStyles.None, out var time)
            && (text.EndsWith('Z') || text.EndsWith("z") || text.Length > 19 && (text[^6] is '+' or '-')))
            return time.ToUniversalTime();
        throw new UsageException($"{option} must be an RFC 3339 time with a zone, like 2026-01-31T12:00:00Z; got \"{text}\"");
    }

    /// <summary>Reads a file with a size limit, with an error that names the file.</summary>
    public static byte[] ReadFile(string path, long limit, string what)
    {
        if (!File.Exists(path)) throw new UsageException($"{what} {path} does not exist");
        try { return TrustPolicyFolder.ReadLimited(path, limit); }
        catch (PackageFormatException e) { throw new UsageException($"{what} {path}: {e.Message}"); }
    }

    /// <summary>
    /// Writes <paramref name="path"/> through <paramref name="write"/> into PATH.tmp, flushed to disk and then renamed,
    /// so a failure never leaves a half-written file under the real name. Creates the folder.
    /// </summary>
    public static T WriteAtomically<T>(string path, Func<Stream, T> write)
    {
        if (Path.GetDirectoryName(Path.GetFullPath(path)) is { } directory)
            Directory.CreateDirectory(directory);
        string temporary = path + ".tmp";
        try
        {
            T value;
            using (var file = new FileStream(temporary, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 16))
            {
                value = write(file);
                file.Flush(flushToDisk: true);
            }
            File.Move(temporary, path, overwrite: true);
            return value;
        }
        finally { File.Delete(temporary); }
    }

    /// <summary>Parses with a library parser and prefixes errors with the file name.</summary>
    public static T ParseFile<T>(string path, long limit, string what, Func<byte[], T> parse)
    {
        byte[] bytes = ReadFile(path, limit, what);
        try { return parse(bytes); }
        catch (PackageFormatException e) { throw e.WithContext(path); }
    }
}

/// <summary>A usage mistake the user can fix (missing file, conflicting options).</summary>
internal sealed class UsageException(string message) : Exception(message);
