using System.Diagnostics;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// Publishes src/Tabula.Boot as a static NativeAOT binary once per test run (incremental after the first time)
/// and checks that it is static. Shared by every boot test through <see cref="BootCollection"/>.
/// </summary>
public sealed class BootBinary
{
    readonly Lazy<string> path = new(Publish, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The published binary; publishes on first use.</summary>
    public string Path => path.Value;

    /// <summary>How long the publish took (0 when reused).</summary>
    public TimeSpan PublishTime { get; private set; }

    static string Publish()
    {
        string output = RepositoryPaths.Out("boot");
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (string a in new[] { "publish", "src/Tabula.Boot/Tabula.Boot.csproj", "-c", "Release", "-r", "linux-x64", "-o", output, "--nologo", "-v", "quiet" })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(8)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException("dotnet publish of Tabula.Boot took over 8 minutes");
        }
        string binary = System.IO.Path.Combine(output, "tabula-boot");
        if (process.ExitCode != 0 || !File.Exists(binary))
            throw new InvalidOperationException($"dotnet publish of Tabula.Boot failed ({process.ExitCode}):\n{stdout}\n{stderr.Result}");
        string version = Prerequisites.Run(binary, "version");
        if (!version.StartsWith("tabula-boot ", StringComparison.Ordinal))
            throw new InvalidOperationException($"tabula-boot version printed: {version}");
        return binary;
    }
}

[CollectionDefinition(Name)]
public sealed class BootCollection : ICollectionFixture<BootBinary>
{
    public const string Name = "boot";
}
