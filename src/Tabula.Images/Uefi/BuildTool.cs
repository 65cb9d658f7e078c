using System.ComponentModel;
using System.Diagnostics;

namespace Tabula.Images.Uefi;

/// <summary>Runs a Debian build tool (mtools, xorriso, sbsign) with fixed locale, time zone and
/// SOURCE_DATE_EPOCH, so its output does not depend on who runs it or when; a missing tool or a non-zero exit is an
/// <see cref="ImageException"/> (<see cref="ImageError.ToolFailed"/>) with the tool's own message.</summary>
internal static class BuildTool
{
    /// <summary>The fixed time written into FAT entries and ISO 9660 dates: 2026-01-01T00:00:00Z. Images carry no build time.</summary>
    public const long SourceDateEpoch = 1767225600;

    static readonly TimeSpan Timeout = TimeSpan.FromMinutes(5);

    public static void Run(string tool, string package, params string[] arguments)
    {
        var start = new ProcessStartInfo(tool)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (string a in arguments)
            start.ArgumentList.Add(a);
        start.Environment["SOURCE_DATE_EPOCH"] = SourceDateEpoch.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["TZ"] = "UTC";
        start.Environment["LC_ALL"] = "C";
        start.Environment.Remove("MTOOLSRC");
        start.Environment["MTOOLS_SKIP_CHECK"] = "1";
        Process process;
        try { process = Process.Start(start) ?? throw new Win32Exception($"could not start {tool}"); }
        catch (Win32Exception e)
        {
            ImageException.Throw(ImageError.ToolFailed, $"{tool} could not be started ({e.Message}); install Debian's {package} (scripts/apt-packages)", e);
            return;
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            if (!process.WaitForExit(Timeout))
            {
                process.Kill(entireProcessTree: true);
                ImageException.Throw(ImageError.ToolFailed, $"{tool} took over {Timeout.TotalMinutes} minutes");
            }
            if (process.ExitCode != 0)
                ImageException.Throw(ImageError.ToolFailed, $"{tool} {string.Join(' ', arguments)} exited {process.ExitCode}: {(stderr.Result + stdout.Result).Trim()}");
        }
    }
}
