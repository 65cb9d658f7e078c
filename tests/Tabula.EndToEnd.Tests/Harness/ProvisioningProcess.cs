using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Tabula.Provisioning;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Hosting;
using Tabula.Provisioning.Storage;
using Tabula.Tls;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// The real provisioning server (`tabula provisioning serve`, the CLI build copied next to the tests) over HTTPS with a
/// dev CA made for the tap address, run inside the test namespace with <c>ip netns exec</c>. Packages are published
/// into its store beforehand with the same core the server runs (verified against the server's trust policy).
/// The machines pin <see cref="CaPem"/> as tls_roots.pem.
/// </summary>
public sealed class ProvisioningProcess : IDisposable
{
    readonly string root;
    readonly TapNetwork network;
    Process? process;

    ProvisioningProcess(string root, TapNetwork network, DevTlsFiles tls, int port)
    {
        this.root = root;
        this.network = network;
        Tls = tls;
        Port = port;
    }

    public DevTlsFiles Tls { get; }
    public int Port { get; }
    public string CaPem => File.ReadAllText(Tls.CaCertificate);
    public string BaseUrl => $"https://{network.HostAddress}:{Port}";
    public string StoreDirectory => Path.Combine(root, "store");

    /// <summary>Prepares the store, the dev CA and the configuration; does not start the server.</summary>
    public static ProvisioningProcess Prepare(TapNetwork network, string trustPolicyDirectory, int port = 8443)
    {
        string root = Directory.CreateTempSubdirectory("tabula-e2e-prov-").FullName;
        var tls = DevCertificateAuthority.Init(Path.Combine(root, "tls"), [network.HostAddress.ToString()], DateTimeOffset.UtcNow,
            TimeSpan.FromDays(2), TimeSpan.FromDays(2));
        File.WriteAllText(Path.Combine(root, "prov.json"), $$"""
            { "Listen": "https://{{network.HostAddress}}:{{port}}", "StoreDirectory": "store", "TrustPolicyDirectory": "{{trustPolicyDirectory}}",
              "Tls": { "CertificatePath": "tls/server.pem", "KeyPath": "tls/server.key" } }
            """);
        return new ProvisioningProcess(root, network, tls, port) { TrustPolicyDirectory = trustPolicyDirectory };
    }

    string TrustPolicyDirectory { get; init; } = "";

    /// <summary>Publishes a package to <paramref name="channel"/> (refused packages throw, as over HTTP).</summary>
    public async Task<string> PublishAsync(byte[] descriptor, byte[] archive, string channel)
    {
        var core = new ProvisioningCore(new FileStore(StoreDirectory), TrustPolicyVerifier.FromDirectory(TrustPolicyDirectory),
            TimeProvider.System, new ProvisioningLimits(), publicBaseUrl: null);
        var result = await core.PublishAsync(descriptor, new MemoryStream(archive), channel, "e2e", CancellationToken.None);
        return result.Package.ArchiveSha256;
    }

    /// <summary>Starts `tabula provisioning serve` in the namespace and waits until it accepts connections.</summary>
    public void Start()
    {
        var start = new ProcessStartInfo("ip") { UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root };
        foreach (string a in new[] { "netns", "exec", network.Namespace.Name, "dotnet", Path.Combine(AppContext.BaseDirectory, "tabula.dll"),
                     "provisioning", "serve", "--config", Path.Combine(root, "prov.json") })
            start.ArgumentList.Add(a);
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal)).ToArray())
            start.Environment.Remove(key);
        process = Process.Start(start)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(60))
        {
            if (process.HasExited)
                throw new InvalidOperationException($"tabula provisioning serve exited with {process.ExitCode}");
            bool up = network.Namespace.CanConnect(new IPEndPoint(network.HostAddress, Port));
            if (up)
                return;
            Thread.Sleep(100);
        }
        throw new TimeoutException("tabula provisioning serve did not listen within 60 s");
    }

    public void Dispose()
    {
        if (process is { HasExited: false })
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit(5000);
        }
        process?.Dispose();
        try { Directory.Delete(root, recursive: true); } catch (IOException) { }
    }
}
