using System.Diagnostics;

namespace Tabula.Fleet.Tests.Support;

/// <summary>
/// Runs a relay list through MullvadRelayList/ (a Rust program with the Mullvad app's relay-list field names and
/// types, deserialized by serde), built once per test run with Debian's cargo against Debian's packaged crates, offline.
/// </summary>
public static class MullvadRelayListCheck
{
    private const string Cargo = "/usr/bin/cargo";
    // Next to the test assembly, not in /tmp: cargo runs build scripts and we run the checker from here, and a
    // machine may mount /tmp noexec.
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "mullvad-relay-list-build");
    private static readonly Lazy<Task<string>> Built = new(BuildAsync);

    /// <summary>The checker's verdict: exit code and its output (stdout on success, serde's error on failure).</summary>
    public static async Task<(int ExitCode, string Output)> RunAsync(byte[] relayList)
    {
        string binary = await Built.Value;
        var (code, stdout, stderr) = await RunProcessAsync(binary, [], relayList, null);
        return (code, code == 0 ? stdout.Trim() : stderr.Trim());
    }

    private static async Task<string> BuildAsync()
    {
        if (!File.Exists(Cargo) || !Directory.Exists("/usr/share/cargo/registry"))
            throw new InvalidOperationException("missing Debian's cargo and librust-serde-*-dev (run scripts/setup as root)");
        string home = Path.Combine(Root, "cargo-home");
        Directory.CreateDirectory(home);
        // Debian's crates replace crates.io; nothing is downloaded.
        await File.WriteAllTextAsync(Path.Combine(home, "config.toml"),
            "[source.crates-io]\nreplace-with = \"debian\"\n[source.debian]\ndirectory = \"/usr/share/cargo/registry\"\n[net]\noffline = true\n");
        string manifest = Path.Combine(AppContext.BaseDirectory, "MullvadRelayList", "Cargo.toml");
        var environment = new Dictionary<string, string>
        {
            ["CARGO_HOME"] = home, ["CARGO_TARGET_DIR"] = Path.Combine(Root, "target"), ["RUSTC"] = "/usr/bin/rustc",
            ["PATH"] = "/usr/bin:/bin",
        };
        var (code, _, stderr) = await RunProcessAsync(Cargo, ["build", "--release", "--offline", "--quiet", "--manifest-path", manifest], [], environment);
        if (code != 0) throw new InvalidOperationException("building the Mullvad relay-list checker failed: " + stderr);
        return Path.Combine(Root, "target", "release", "mullvad-relay-list-check");
    }

    private static async Task<(int, string, string)> RunProcessAsync(string file, string[] arguments, byte[] input, Dictionary<string, string>? environment)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        if (environment is not null)
            foreach (var (k, v) in environment) start.Environment[k] = v;
        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.StandardInput.BaseStream.WriteAsync(input);
        process.StandardInput.Close();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(10));
        try { await process.WaitForExitAsync(timeout.Token); }
        catch (OperationCanceledException) { process.Kill(entireProcessTree: true); throw new TimeoutException($"{file} ran over 10 minutes"); }
        return (process.ExitCode, await stdout, await stderr);
    }
}
