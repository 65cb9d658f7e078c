namespace Tabula.Cli.Tests;

/// <summary>The independent implementation: the openssl 3 command (Debian package openssl, in scripts/apt-packages).</summary>
public static class Openssl
{
    public static ProcessOutput Run(string workingDirectory, params string[] args) =>
        ProcessRunner.Run("openssl", args, workingDirectory);

    /// <summary>Runs openssl and fails the test unless it exits 0.</summary>
    public static ProcessOutput Ok(string workingDirectory, params string[] args)
    {
        var output = Run(workingDirectory, args);
        Assert.True(output.ExitCode == 0, output.ToString());
        return output;
    }
}
