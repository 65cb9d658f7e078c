using System.Diagnostics;
using System.Reflection;

namespace Tabula.Testing;

/// <summary>
/// The one runner of the real `tabula` program for every test project. Which build: $TABULA_EXE (relative to the
/// repository root, e.g. the NativeAOT src/Tabula.Cli/bin/Release/aot/linux-x64/tabula), else tabula.dll beside the
/// test assembly (a project reference to Tabula.Cli copies it there), else this checkout's
/// src/Tabula.Cli/bin/&lt;Configuration&gt;/net10.0/tabula. The developer's or CI's TABULA_* settings (except
/// TABULA_CI) are kept out of the child, so only what a test passes reaches it.
/// </summary>
public static class TabulaCli
{
    public static string RepositoryRoot { get; } = FindRoot();

    static readonly Lazy<(string File, string? Dll)> Program = new(FindProgram);

    /// <summary>The program started: an executable, or `dotnet` for tabula.dll.</summary>
    public static string Executable => Program.Value.File;

    /// <summary>A start description for `tabula args…` in <paramref name="workingDirectory"/> with
    /// <paramref name="environment"/> added.</summary>
    public static ProcessStartInfo StartInfo(IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null)
    {
        var (file, dll) = Program.Value;
        var info = new ProcessStartInfo(file)
        {
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        if (dll is not null)
            info.ArgumentList.Add(dll);
        foreach (string a in args)
            info.ArgumentList.Add(a);
        foreach (string key in info.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal) && k != "TABULA_CI").ToArray())
            info.Environment.Remove(key);
        foreach (var (key, value) in environment ?? new Dictionary<string, string>())
            info.Environment[key] = value;
        return info;
    }

    /// <summary>Runs `tabula args…` to the end (or the timeout, default 120 s) and returns what it left.</summary>
    public static ProcessOutput Run(IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null) =>
        ProcessRunner.Run(StartInfo(args, workingDirectory, environment), timeout);

    /// <summary><see cref="Run"/> without blocking a thread.</summary>
    public static Task<ProcessOutput> RunAsync(IEnumerable<string> args, string? workingDirectory = null,
        IReadOnlyDictionary<string, string>? environment = null, TimeSpan? timeout = null) =>
        ProcessRunner.RunAsync(StartInfo(args, workingDirectory, environment), timeout);

    static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tabula.slnx) above " + AppContext.BaseDirectory);
    }

    static (string File, string? Dll) FindProgram()
    {
        if (Environment.GetEnvironmentVariable("TABULA_EXE") is { Length: > 0 } chosen)
        {
            string full = Path.GetFullPath(chosen, RepositoryRoot);
            return File.Exists(full) ? (full, null) : throw new InvalidOperationException($"TABULA_EXE={chosen}: {full} does not exist");
        }
        string beside = Path.Combine(AppContext.BaseDirectory, "tabula.dll");
        if (File.Exists(beside))
            return ("dotnet", beside);
        string configuration = typeof(TabulaCli).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        string built = Path.Combine(RepositoryRoot, "src", "Tabula.Cli", "bin", configuration, "net10.0", "tabula");
        return File.Exists(built)
            ? (built, null)
            : throw new InvalidOperationException($"{built} does not exist: build src/Tabula.Cli in {configuration} first");
    }
}
