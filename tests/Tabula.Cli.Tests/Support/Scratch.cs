namespace Tabula.Cli.Tests;

/// <summary>A fresh temporary folder, removed on dispose.</summary>
public sealed class Scratch : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("tabula-cli-tests-").FullName;

    public string this[string name] => Path.Combine(Dir, name);

    /// <summary>Writes a file of <paramref name="length"/> random bytes and returns its path.</summary>
    public string RandomFile(string name, int length)
    {
        byte[] bytes = new byte[length];
        Random.Shared.NextBytes(bytes);
        File.WriteAllBytes(this[name], bytes);
        return this[name];
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, recursive: true); }
        catch (IOException) { }
    }
}
