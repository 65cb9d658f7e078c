using System.Reflection;

namespace Tabula.Cli.Tests;

/// <summary>
/// The built `tabula` executable of this checkout: src/Tabula.Cli/bin/&lt;Configuration&gt;/net10.0/tabula,
/// the configuration being the one these tests were built in (the project reference builds it first).
/// TABULA_EXE names another build to test instead (relative to the repository root), e.g. the
/// NativeAOT one that ./tabula runs: src/Tabula.Cli/bin/Release/aot/linux-x64/tabula.
/// </summary>
public static class Tabula
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Executable { get; } = FindExecutable();

    /// <summary>Runs `tabula args…` and returns its exit code and output.</summary>
    public static ProcessOutput Run(params string[] args) => ProcessRunner.Run(Executable, args);

    /// <summary>Runs `tabula args…` in a working directory.</summary>
    public static ProcessOutput RunIn(string workingDirectory, params string[] args) => ProcessRunner.Run(Executable, args, workingDirectory);

    /// <summary>Runs `tabula args…` and fails the test unless it exits 0.</summary>
    public static ProcessOutput Ok(params string[] args)
    {
        var output = Run(args);
        Assert.True(output.ExitCode == 0, output.ToString());
        return output;
    }

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tabula.slnx) above " + AppContext.BaseDirectory);
    }

    private static string FindExecutable()
    {
        if (Environment.GetEnvironmentVariable("TABULA_EXE") is { Length: > 0 } chosen)
        {
            string full = Path.GetFullPath(chosen, RepositoryRoot); // relative to the repository root
            return File.Exists(full) ? full : throw new InvalidOperationException($"TABULA_EXE={chosen}: {full} does not exist");
        }
        string configuration = typeof(Tabula).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()?.Configuration ?? "Release";
        string path = Path.Combine(RepositoryRoot, "src", "Tabula.Cli", "bin", configuration, "net10.0", "tabula");
        return File.Exists(path)
            ? path
            : throw new InvalidOperationException($"{path} does not exist: build src/Tabula.Cli in {configuration} first");
    }
}
