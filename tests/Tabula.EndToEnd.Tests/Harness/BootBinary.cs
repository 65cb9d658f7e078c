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

    static string Publish() => NativeBinary.Publish("src/Tabula.Boot/Tabula.Boot.csproj", "boot", "tabula-boot");
}

/// <summary>Publishes src/Tabula.Relay (the relay agent, /init of the relay OS package) once per test run.</summary>
public sealed class RelayBinary
{
    readonly Lazy<string> path = new(() => NativeBinary.Publish("src/Tabula.Relay/Tabula.Relay.csproj", "relay", "tabula-relay"),
        LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The published binary; publishes on first use.</summary>
    public string Path => path.Value;
}

/// <summary>`dotnet publish` of a static NativeAOT program into out/e2e/NAME, checked by running "BINARY version".</summary>
static class NativeBinary
{
    public static string Publish(string project, string outName, string binaryName)
    {
        // The lab (tabula lab up, in the Lab tests running beside these) publishes the same projects: one at a time.
        using var publishing = Tabula.Lab.NativeBinaries.LockPublish(RepositoryPaths.Root, binaryName, TimeSpan.FromMinutes(15));
        string output = RepositoryPaths.Out(outName);
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
            WorkingDirectory = RepositoryPaths.Root,
        };
        foreach (string a in new[] { "publish", project, "-c", "Release", "-r", "linux-x64", "-o", output, "--nologo", "-v", "quiet" })
            start.ArgumentList.Add(a);
        using var process = Process.Start(start)!;
        var stderr = process.StandardError.ReadToEndAsync();
        string stdout = process.StandardOutput.ReadToEnd();
        if (!process.WaitForExit(TimeSpan.FromMinutes(8)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"dotnet publish of {project} took over 8 minutes");
        }
        string binary = System.IO.Path.Combine(output, binaryName);
        if (process.ExitCode != 0 || !File.Exists(binary))
            throw new InvalidOperationException($"dotnet publish of {project} failed ({process.ExitCode}):\n{stdout}\n{stderr.Result}");
        string version = Prerequisites.Run(binary, "version");
        if (!version.StartsWith(binaryName + " ", StringComparison.Ordinal))
            throw new InvalidOperationException($"{binaryName} version printed: {version}");
        return binary;
    }
}

[CollectionDefinition(Name)]
public sealed class BootCollection : ICollectionFixture<BootBinary>
{
    public const string Name = "boot";
}
