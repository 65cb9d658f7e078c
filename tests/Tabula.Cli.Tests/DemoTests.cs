namespace Tabula.Cli.Tests;

/// <summary>`tabula demo`: the whole workflow, run by the real binary.</summary>
public sealed class DemoTests : IDisposable
{
    private readonly Scratch scratch = new();

    public void Dispose() => scratch.Dispose();

    [Fact]
    public void Demo_signs_verifies_and_refuses_a_tampered_copy()
    {
        var output = Tabula.Run("demo", "--dir", scratch["demo"]);
        Assert.True(output.ExitCode == 0, output.ToString());
        Assert.Contains("demo complete", output.Stdout);
        Assert.True(File.Exists(scratch["demo/os.zip"]) && File.Exists(scratch["demo/os.json"]));
    }
}
