namespace Tabula.Packaging.Tests;

/// <summary>Upstream conformance data in tests/vectors, read byte for byte.</summary>
internal static class Vectors
{
    public static string RepositoryRoot { get; } = FindRoot();

    public static string Directory => Path.Combine(RepositoryRoot, "tests", "vectors");

    public static string PathOf(string relative) => Path.Combine(Directory, relative);

    public static byte[] Read(string relative) => File.ReadAllBytes(PathOf(relative));

    private static string FindRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "Tabula.slnx")))
                return dir.FullName;
        throw new InvalidOperationException("cannot find the repository root (Tabula.slnx) above " + AppContext.BaseDirectory);
    }
}
