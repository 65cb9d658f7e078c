using System.Diagnostics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Tabula.WireGuard.Tests.Support;

/// <summary>
/// Prerequisites of tests with real parts (root, network namespaces, wireguard-go, wg). A missing one skips the test on
/// a developer's machine and fails it when TABULA_CI (or CI) is set (Npgsql's IgnoreExceptOnBuildServer).
/// </summary>
public static class Prerequisites
{
    public static bool IsCi =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("TABULA_CI"))
        || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>True when the kernel knows the "wireguard" link kind (module loaded, loadable or built in).</summary>
    public static bool KernelHasWireGuard =>
        Directory.Exists("/sys/module/wireguard") ||
        (File.Exists("/proc/modules") && TryRun("modprobe", "-q", "wireguard") && Directory.Exists("/sys/module/wireguard"));

    public static string? Missing(bool needsRoot, params string[] tools)
    {
        var missing = new List<string>();
        if (needsRoot && !IsRoot)
            missing.Add("root");
        foreach (string tool in tools)
            if (FindOnPath(tool) is null)
                missing.Add(tool);
        return missing.Count == 0 ? null : "missing prerequisites: " + string.Join(", ", missing) + " (run scripts/setup as root)";
    }

    public static string? FindOnPath(string tool)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return dirs.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a command with optional standard input; returns stdout, throws with stderr on failure.</summary>
    public static string Run(string file, string[] arguments, string? input = null)
    {
        var start = new ProcessStartInfo(FindOnPath(file) ?? file)
        {
            RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = input is not null,
            UseShellExecute = false,
        };
        foreach (string argument in arguments)
            start.ArgumentList.Add(argument);
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {file}");
        if (input is not null)
        {
            process.StandardInput.Write(input);
            process.StandardInput.Close();
        }
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"{file} {string.Join(' ', arguments)} exited {process.ExitCode}: {stderr.Result.Trim()}");
        return stdout;
    }

    public static string Run(string file, params string[] arguments) => Run(file, arguments, null);

    static bool TryRun(string file, params string[] arguments)
    {
        try { Run(file, arguments); return true; }
        catch (Exception) { return false; }
    }
}

/// <summary>Needs root and the given tools: skipped without them, except under CI where it runs and fails.</summary>
public sealed class PrivilegedFactAttribute : FactAttribute
{
    public PrivilegedFactAttribute(params string[] tools)
    {
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: true, tools) is { } missing)
            Skip = missing;
    }
}

/// <summary>Needs the given tools, not root: skipped without them, except under CI.</summary>
public sealed class ToolsFactAttribute : FactAttribute
{
    public ToolsFactAttribute(params string[] tools)
    {
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: false, tools) is { } missing)
            Skip = missing;
    }
}

/// <summary>
/// Needs root and kernel WireGuard. The kernel of this project's machine kind is built without CONFIG_WIREGUARD
/// (no module can be loaded), so a missing module skips even under CI unless TABULA_REQUIRE_KERNEL_WIREGUARD=1 says
/// the run is on a kernel that has it (the QEMU guest); missing root still fails under CI.
/// </summary>
public sealed class KernelWireGuardFactAttribute : FactAttribute
{
    public KernelWireGuardFactAttribute(params string[] tools)
    {
        bool required = Environment.GetEnvironmentVariable("TABULA_REQUIRE_KERNEL_WIREGUARD") == "1";
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: true, tools) is { } missing)
            Skip = missing;
        else if (!required && Prerequisites.IsRoot && !Prerequisites.KernelHasWireGuard)
            Skip = "this kernel has no WireGuard (CONFIG_WIREGUARD unset, no module); set TABULA_REQUIRE_KERNEL_WIREGUARD=1 to fail instead";
    }
}
