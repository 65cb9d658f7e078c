using System.Diagnostics;

[assembly: System.Runtime.Versioning.SupportedOSPlatform("linux")]

namespace Tabula.Testing;

/// <summary>
/// Prerequisites of tests that use real parts (root, namespaces, QEMU, a guest kernel). Missing ones skip a test
/// on a developer's machine and fail it when TABULA_CI (or CI) is set (Npgsql's IgnoreExceptOnBuildServer).
/// </summary>
public static class Prerequisites
{
    /// <summary>True under CI: a missing prerequisite is a failure, not a skip.</summary>
    public static bool IsCi =>
        !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("TABULA_CI"))
        || !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));

    /// <summary>True when running as root.</summary>
    public static bool IsRoot => Environment.UserName == "root";

    /// <summary>Describes what is missing among root and <paramref name="tools"/> on PATH, or null when all is there.</summary>
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

    /// <summary>Fails the test (CI or not) when something is missing; call at the start of a test body.</summary>
    public static void Require(bool needsRoot, params string[] tools)
    {
        if (Missing(needsRoot, tools) is { } message)
            throw new InvalidOperationException(message);
    }

    /// <summary>The full path of <paramref name="tool"/> on PATH (or in /usr/sbin, /sbin), or null.</summary>
    public static string? FindOnPath(string tool)
    {
        if (tool.Contains('/'))
            return File.Exists(tool) ? tool : null;
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/sbin", "/usr/bin", "/bin"]);
        return dirs.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists);
    }

    /// <summary>Runs a command, returns its standard output; throws with stderr when it fails.</summary>
    public static string Run(string file, params string[] arguments) => Run(file, arguments, input: null);

    /// <summary>Runs a command with <paramref name="input"/> on its standard input (when not null), as <see cref="Run(string, string[])"/>.</summary>
    public static string Run(string file, string[] arguments, string? input)
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
}

/// <summary>A fact that needs root and the given tools: skipped without them, except under CI where it runs and fails.</summary>
public sealed class PrivilegedFactAttribute : FactAttribute
{
    /// <summary>Needs root and <paramref name="tools"/>.</summary>
    public PrivilegedFactAttribute(params string[] tools)
    {
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: true, tools) is { } missing)
            Skip = missing;
    }
}

/// <summary>A fact that needs the given tools but not root: skipped without them, except under CI.</summary>
public sealed class ToolsFactAttribute : FactAttribute
{
    /// <summary>Needs <paramref name="tools"/> on PATH.</summary>
    public ToolsFactAttribute(params string[] tools)
    {
        if (!Prerequisites.IsCi && Prerequisites.Missing(needsRoot: false, tools) is { } missing)
            Skip = missing;
    }
}
