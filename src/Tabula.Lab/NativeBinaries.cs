using System.Xml.Linq;

namespace Tabula.Lab;

/// <summary>
/// Finds the static NativeAOT programs put into images (tabula-boot for stboot, tabula-relay for the relay OS), for the
/// lab and for `tabula image stboot|relay` alike: $TABULA_BOOT_BINARY / $TABULA_RELAY_BINARY, beside the tabula
/// executable, or out/NAME and out/e2e/NAME in the repository checkout. In a checkout, a binary that is missing or
/// older than its sources is (re)published with <c>dotnet publish src/PROJECT -c Release -r linux-x64 -o out/NAME</c>.
/// Its sources are the folders of every project in the program's ProjectReference closure, read from the csproj
/// files, plus the repository-wide build files: no hand-kept list that a new reference can make stale.
/// </summary>
public static class NativeBinaries
{
    /// <summary>What to find: the binary, its project folder and its output folder under out/.</summary>
    public sealed record Program(string Binary, string Project, string OutName, string EnvironmentVariable);

    /// <summary>stboot.</summary>
    public static readonly Program Boot = new("tabula-boot", "src/Tabula.Boot", "boot", "TABULA_BOOT_BINARY");

    /// <summary>The relay agent.</summary>
    public static readonly Program Relay = new("tabula-relay", "src/Tabula.Relay", "relay", "TABULA_RELAY_BINARY");

    /// <summary>Files at the repository root that change every build.</summary>
    static readonly string[] BuildFiles = ["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "global.json"];

    /// <summary>More projects than any closure here has (the relay's is 5). Arbitrary limit, may be increased.</summary>
    const int MaxProjects = 64;

    /// <summary>The repository checkout that holds the current directory or this executable, or null.</summary>
    public static string? RepositoryRoot()
    {
        foreach (string start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
                if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                    return dir.FullName;
        return null;
    }

    /// <summary>
    /// The folders (absolute) of <paramref name="project"/> (a folder with one .csproj, relative to
    /// <paramref name="root"/>) and of every project it references, directly or not, in the order found.
    /// </summary>
    public static IReadOnlyList<string> ProjectClosure(string root, string project)
    {
        var seen = new List<string>();
        var pending = new Queue<string>([Path.GetFullPath(Path.Combine(root, project))]);
        while (pending.TryDequeue(out string? folder))
        {
            if (seen.Contains(folder))
                continue;
            if (seen.Count == MaxProjects)
                throw new LabException($"{project} references more than {MaxProjects} projects");
            seen.Add(folder);
            string[] projects = Directory.Exists(folder) ? Directory.GetFiles(folder, "*.csproj") : [];
            if (projects.Length != 1)
                throw new LabException($"{folder} should hold exactly one .csproj, holds {projects.Length}");
            foreach (var reference in XDocument.Load(projects[0]).Descendants("ProjectReference"))
            {
                string include = ((string?)reference.Attribute("Include") ?? "").Replace('\\', '/');
                if (include.Length == 0 || include.Contains("$(", StringComparison.Ordinal))
                    throw new LabException($"{projects[0]}: a ProjectReference without a plain path (\"{include}\") cannot be followed");
                pending.Enqueue(Path.GetDirectoryName(Path.GetFullPath(Path.Combine(folder, include)))!);
            }
        }
        return seen;
    }

    /// <summary>When <paramref name="program"/>'s newest source (.cs, .csproj, build file) was written.</summary>
    public static DateTime NewestSource(string root, Program program) =>
        ProjectClosure(root, program.Project)
            .SelectMany(f => Directory.EnumerateFiles(f, "*", SearchOption.AllDirectories))
            .Where(p => (p.EndsWith(".cs", StringComparison.Ordinal) || p.EndsWith(".csproj", StringComparison.Ordinal))
                        && !p.Contains("/obj/", StringComparison.Ordinal) && !p.Contains("/bin/", StringComparison.Ordinal))
            .Concat(BuildFiles.Select(f => Path.Combine(root, f)).Where(File.Exists))
            .Select(File.GetLastWriteTimeUtc).DefaultIfEmpty(DateTime.MinValue).Max();

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
            $"no {program.Binary} found: set ${program.EnvironmentVariable}, put it beside tabula, or run from the repository checkout " +
            $"(where it is published with `dotnet publish {program.Project} -c Release -r linux-x64 -o out/{program.OutName}`)");
        // Checked again under the lock: a process that waited finds the binary the one before it published.
        using var publishing = LockPublish(root, program.Binary, TimeSpan.FromMinutes(15));
        DateTime newestSource = NewestSource(root, program);
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

    /// <summary>
    /// Holds the publish lock of <paramref name="binary"/> until disposed: one <c>dotnet publish</c> of a program at a time
    /// across processes (two labs, a lab beside the end-to-end tests' own publish), because concurrent publishes of one
    /// project share its obj/ folder and break each other's native link. The lock is <c>out/.publish-BINARY.lock</c> opened
    /// with FileShare.None, which .NET takes as an advisory flock on Linux; it waits at most <paramref name="timeout"/>.
    /// </summary>
    public static IDisposable LockPublish(string root, string binary, TimeSpan timeout)
    {
        string folder = Path.Combine(root, "out");
        Directory.CreateDirectory(folder);
        string path = Path.Combine(folder, $".publish-{binary}.lock");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            try
            {
                return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
            }
            catch (IOException e) when (e is not FileNotFoundException and not DirectoryNotFoundException)
            {
                if (clock.Elapsed >= timeout)
                    throw new LabException($"another process has been publishing {binary} for {timeout.TotalMinutes:0} minutes ({path} is held)");
                Thread.Sleep(250);
            }
        }
    }
}
