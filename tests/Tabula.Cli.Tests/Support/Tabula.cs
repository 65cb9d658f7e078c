namespace Tabula.Cli.Tests;

/// <summary>Shorthands over <see cref="TabulaCli"/> (the one runner of the real `tabula`) for these tests.</summary>
public static class Tabula
{
    public static string RepositoryRoot => TabulaCli.RepositoryRoot;

    /// <summary>Runs `tabula args…` and returns its exit code and output.</summary>
    public static ProcessOutput Run(params string[] args) => TabulaCli.Run(args);

    /// <summary>Runs `tabula args…` in a working directory.</summary>
    public static ProcessOutput RunIn(string workingDirectory, params string[] args) => TabulaCli.Run(args, workingDirectory);

    /// <summary>Runs `tabula args…` and fails the test unless it exits 0.</summary>
    public static ProcessOutput Ok(params string[] args)
    {
        var output = Run(args);
        Assert.True(output.ExitCode == 0, output.ToString());
        return output;
    }
}
