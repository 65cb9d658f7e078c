using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tabula.Fleet.Api;
using Tabula.Packaging;
using Tabula.Tls;
using Tabula.Testing;

namespace Tabula.EndToEnd.Tests.Harness;

/// <summary>
/// The real fleet controller (`tabula fleet serve`, the CLI build next to the tests) over HTTPS on the tap network's
/// host address, inside the test namespace, on SQLite, with a dev CA for that address (the relay package pins it).
/// The first admin is made offline with `tabula fleet staff create`; staff and customer calls go through
/// <see cref="Client"/>, whose sockets are opened inside the namespace. With TPM roots it requires attestation
/// (<c>--attestation required --tpm-roots PEM</c>, the attestation CA made beside the database; docs/attestation.md).
/// </summary>
public sealed class FleetProcess : IDisposable
{
    readonly string root;
    readonly TapNetwork network;
    Process? process;

    FleetProcess(string root, TapNetwork network, DevTlsFiles tls, int port, string? hostName)
    {
        this.root = root;
        this.network = network;
        Tls = tls;
        Port = port;
        HostName = hostName;
    }

    /// <summary>The DNS name in the server certificate besides the address, if any.</summary>
    public string? HostName { get; }

    /// <summary>The URL with the host name (what a relay that resolves names is given).</summary>
    public string NamedUrl => $"https://{HostName ?? throw new InvalidOperationException("started without a host name")}:{Port}";

    public DevTlsFiles Tls { get; }
    public int Port { get; }
    public string BaseUrl => $"https://{network.HostAddress}:{Port}";
    public string AdminToken { get; private set; } = "";
    public string Log => log.ToString();
    readonly System.Text.StringBuilder log = new();

    /// <summary>Starts the controller; <paramref name="tpmRoots"/> (a PEM file of TPM manufacturer roots) turns on
    /// <c>--attestation required</c>.</summary>
    public static FleetProcess Start(TapNetwork network, int port = 9443, string? hostName = null, string? tpmRoots = null)
    {
        string root = Directory.CreateTempSubdirectory("tabula-e2e-fleet-").FullName;
        var tls = DevCertificateAuthority.Init(Path.Combine(root, "tls"),
            hostName is null ? [network.HostAddress.ToString()] : [network.HostAddress.ToString(), hostName], DateTimeOffset.UtcNow,
            TimeSpan.FromDays(2), TimeSpan.FromDays(2));
        var fleet = new FleetProcess(root, network, tls, port, hostName);
        string database = "sqlite:" + Path.Combine(root, "fleet.db");
        string created = fleet.Cli(null, "fleet", "staff", "create", "--db", database, "--username", "e2e", "--role", "admin", "--api-token", "e2e", "--json");
        fleet.AdminToken = JsonDocument.Parse(created).RootElement.GetProperty("api_token").GetString()!;
        fleet.process = Process.Start(fleet.Start(network.Namespace.Name, ["fleet", "serve", "--db", database, "--urls", fleet.BaseUrl,
            "--tls-cert", tls.ServerCertificate, "--tls-key", tls.ServerKey,
            "--relay-private-addresses",   // the relay's address on the tap network is 10.199.N.2
            .. tpmRoots is null ? Array.Empty<string>() : ["--attestation", "required", "--tpm-roots", tpmRoots]]))!;
        fleet.process.OutputDataReceived += (_, e) => { lock (fleet.log) fleet.log.AppendLine(e.Data); };
        fleet.process.ErrorDataReceived += (_, e) => { lock (fleet.log) fleet.log.AppendLine(e.Data); };
        fleet.process.BeginOutputReadLine();
        fleet.process.BeginErrorReadLine();
        var clock = Stopwatch.StartNew();
        while (!network.Namespace.CanConnect(new IPEndPoint(network.HostAddress, port)))
        {
            if (fleet.process.HasExited || clock.Elapsed > TimeSpan.FromSeconds(60))
            {
                string output = fleet.Log;
                fleet.Dispose();
                throw new InvalidOperationException($"tabula fleet serve did not listen: {output}");
            }
            Thread.Sleep(100);
        }
        return fleet;
    }

    ProcessStartInfo Start(string? ns, params string[] arguments)
    {
        var start = new ProcessStartInfo(ns is null ? "dotnet" : "ip")
        {
            UseShellExecute = false, RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = root,
        };
        foreach (string a in (ns is null ? [] : new[] { "netns", "exec", ns, "dotnet" }).Concat([Path.Combine(AppContext.BaseDirectory, "tabula.dll"), .. arguments]))
            start.ArgumentList.Add(a);
        foreach (string key in start.Environment.Keys.Where(k => k.StartsWith("TABULA_", StringComparison.Ordinal)).ToArray())
            start.Environment.Remove(key);
        start.Environment["TABULA_FLEET_PASSWORD"] = "an e2e admin password";
        return start;
    }

    /// <summary>Runs the CLI (in namespace <paramref name="ns"/>, if given) and returns its standard output; a non-zero exit throws with both outputs.</summary>
    public string Cli(string? ns, params string[] arguments)
    {
        using var cli = Process.Start(Start(ns, arguments))!;
        var stderr = cli.StandardError.ReadToEndAsync();
        string stdout = cli.StandardOutput.ReadToEnd();
        cli.WaitForExit();
        if (cli.ExitCode != 0) throw new InvalidOperationException($"tabula {string.Join(' ', arguments)}: {cli.ExitCode} {stdout} {stderr.Result}");
        return stdout;
    }

    /// <summary>An HTTPS client to the controller whose TCP sockets are made inside the namespace and which trusts only the dev CA.</summary>
    public HttpClient Client(string? token = null, string scheme = "Bearer")
    {
        var pinned = PinnedTlsRoots.LoadPemFile(Tls.CaCertificate, TimeProvider.System);
        return PinnedHttp.Client(new Uri(BaseUrl), pinned, TimeSpan.FromSeconds(30),
            token is null ? null : new AuthenticationHeaderValue(scheme, token), handler => handler.ConnectCallback = async (context, ct) =>
            {
                // A socket belongs to the namespace of the thread that creates it: create it in there, connect from anywhere.
                var socket = network.Namespace.RunInside(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
                try
                {
                    await socket.ConnectAsync(context.DnsEndPoint.Host, context.DnsEndPoint.Port, ct);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            });
    }

    public static async Task<T> PostAsync<T>(HttpClient client, string path, object? body, JsonTypeInfo<T> reply)
    {
        using var content = body is null ? null : JsonContent.Create(body, body.GetType(), options: FleetJson.Default.Options);
        using var response = await client.PostAsync(path, content);
        string text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"POST {path}: {(int)response.StatusCode} {text}");
        return JsonSerializer.Deserialize(text, reply)!;
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
