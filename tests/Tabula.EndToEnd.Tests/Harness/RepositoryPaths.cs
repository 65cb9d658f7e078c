namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>Locates the repository (the folder holding Tabula.slnx) and the ignored out/ folder for artifacts and logs.</summary>
internal static class RepositoryPaths
{
    internal static string Root { get; } = Find();

    internal static string Out(params string[] parts) => Path.Combine([Root, "out", "e2e", .. parts]);

    static string Find()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException($"no Tabula.slnx above {AppContext.BaseDirectory}");
    }
}
