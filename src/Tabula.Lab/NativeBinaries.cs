namespace Tabula.Lab;

/// <summary>
/// Finds the static NativeAOT programs the lab puts into images (tabula-boot for stboot, tabula-relay for the relay
/// OS) the way `tabula image stboot` finds tabula-boot: $TABULA_BOOT_BINARY / $TABULA_RELAY_BINARY, beside the tabula
/// executable, or out/NAME and out/e2e/NAME in the repository checkout. In a checkout, a binary that is missing or
/// older than its sources is (re)published with <c>dotnet publish src/PROJECT -c Release -r linux-x64 -o out/NAME</c>.
/// </summary>
public static class NativeBinaries
{
    /// <summary>What to find: the binary, its project and its output folder under out/.</summary>
    public sealed record Program(string Binary, string Project, string OutName, string EnvironmentVariable, IReadOnlyList<string> SourceFolders);

    /// <summary>stboot.</summary>
    public static readonly Program Boot = new("tabula-boot", "src/Tabula.Boot", "boot", "TABULA_BOOT_BINARY",
        ["src/Tabula.Boot", "src/Tabula.Linux", "src/Tabula.Packaging"]);

    /// <summary>The relay agent.</summary>
    public static readonly Program Relay = new("tabula-relay", "src/Tabula.Relay", "relay", "TABULA_RELAY_BINARY",
        ["src/Tabula.Relay", "src/Tabula.Linux", "src/Tabula.Packaging", "src/Tabula.WireGuard", "src/Tabula.Fleet.Protocol"]);

    /// <summary>The repository checkout that holds this executable or the current directory, or null.</summary>
    public static string? RepositoryRoot()
    {
        foreach (string start in new[] { AppContext.BaseDirectory, Environment.CurrentDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                    return dir.FullName;
        return null;
    }

    /// <summary>Finds (or publishes) <paramref name="program"/>; <paramref name="progress"/> hears about a publish.</summary>
    public static string Find(Program program, Action<string> progress)
    {
        if (Environment.GetEnvironmentVariable(program.EnvironmentVariable) is { Length: > 0 } fromEnvironment)
            return File.Exists(fromEnvironment) ? fromEnvironment
                : throw new LabException($"${program.EnvironmentVariable} names {fromEnvironment}, which does not exist");
        string beside = Path.Combine(AppContext.BaseDirectory, program.Binary);
        if (File.Exists(beside))
            return beside;
        string root = RepositoryRoot() ?? throw new LabException(
            $"no {program.Binary} found: set ${program.EnvironmentVariable}, put it beside tabula, or run from the repository checkout");
        DateTime newestSource = program.SourceFolders.Select(f => Path.Combine(root, f)).Where(Directory.Exists)
            .SelectMany(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories))
            .Where(p => (p.EndsWith(".cs", StringComparison.Ordinal) || p.EndsWith(".csproj", StringComparison.Ordinal))
                        && !p.Contains("/obj/", StringComparison.Ordinal) && !p.Contains("/bin/", StringComparison.Ordinal))
            .Select(File.GetLastWriteTimeUtc).DefaultIfEmpty(DateTime.MinValue).Max();
        foreach (string candidate in new[] { $"out/{program.OutName}/{program.Binary}", $"out/e2e/{program.OutName}/{program.Binary}" })
        {
            string path = Path.Combine(root, candidate);
            if (File.Exists(path) && File.GetLastWriteTimeUtc(path) >= newestSource)
                return path;
        }
        string output = Path.Combine(root, "out", program.OutName);
        progress($"publishing {program.Binary} (static NativeAOT, a few minutes the first time): " +
                 $"dotnet publish {program.Project} -c Release -r linux-x64 -o out/{program.OutName}");
        string dotnet = HostProcess.Find("dotnet") ?? throw new LabException($"{program.Binary} needs publishing and dotnet is not on PATH");
        HostProcess.Run([dotnet, "publish", Path.Combine(root, program.Project), "-c", "Release", "-r", "linux-x64", "-o", output, "--nologo", "-v", "quiet"],
            timeout: TimeSpan.FromMinutes(15));
        string binary = Path.Combine(output, program.Binary);
        if (!File.Exists(binary))
            throw new LabException($"dotnet publish {program.Project} produced no {binary}");
        File.SetLastWriteTimeUtc(binary, DateTime.UtcNow);
        return binary;
    }
}
