using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tabula.Provisioning;
using System.Net;
using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Tabula.Provisioning.Client;
using Tabula.Provisioning.Core;
using Tabula.Provisioning.Export;
using Tabula.Provisioning.Hosting;
using Tabula.Provisioning.Http;
using Tabula.Provisioning.Storage;
using Tabula.Tls;

namespace Tabula.Cli.Commands;

/// <summary>
/// `tabula provisioning serve|token|tls|export|channel|check`: run and administer the provisioning server.
/// The CLI maps its options once onto <see cref="ProvisioningOptions"/>; the server is the same code the tests run.
/// </summary>
public static class ProvisioningCommands
{
    public static Command Create() => new("provisioning", "Run and administer the provisioning server.")
    {
        Serve(), Token(), Tls(), Export(), Channel(), Check(),
    };

    static Command Serve()
    {
        var config = new Option<FileInfo?>("--config") { Description = "Config file (JSON); TABULA_* environment variables override it" };
        var store = new Option<string?>("--store") { Description = "Store directory (overrides StoreDirectory)" };
        var listen = new Option<string?>("--listen") { Description = "https://IP:PORT to listen on (default https://127.0.0.1:8443)" };
        var command = new Command("serve", "Run the provisioning server until SIGINT/SIGTERM.") { config, store, listen };
        command.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var overrides = new Dictionary<string, string?>();
            if (result.GetValue(store) is { } s)
                overrides["StoreDirectory"] = Path.GetFullPath(s);
            if (result.GetValue(listen) is { } l)
                overrides["Listen"] = l;
            var options = ProvisioningServer.LoadOptions(result.GetValue(config)?.FullName, overrides);
            ProvisioningServer.Validate(options);
            var verifier = TrustPolicyVerifier.FromDirectory(options.TrustPolicyDirectory);
            await using var app = ProvisioningServer.Build(options, verifier);
            await app.RunAsync();
            return 0;
        }));
        return command;
    }

    static Command Token()
    {
        var store = StoreOption();
        var name = new Option<string>("--name") { Description = "Who the token belongs to (appears in the audit log)", Required = true };
        var roles = new Option<string[]>("--role")
        {
            Description = "What the token may do, repeatable: publish (upload signed packages), channels (move channels). " +
                          "Default: both. Give a build pipeline publish only, so it cannot repoint the fleet.",
            AllowMultipleArgumentsPerToken = true,
        };
        var expires = new Option<string?>("--expires")
        {
            Description = "When it stops working: a duration (90d, 12h), an ISO 8601 time, or never (default 90d)",
        };
        var create = new Command("create", "Create a staff token; prints it once. The store keeps only its SHA-256.") { store, name, roles, expires };
        create.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var fileStore = new FileStore(result.GetValue(store)!);
            string[] given = result.GetValue(roles) is { Length: > 0 } r ? r : StaffRoles.All;
            var now = DateTimeOffset.UtcNow;
            var (token, record) = StaffTokens.Create(result.GetValue(name)!, now, given, StaffTokens.ParseExpiry(result.GetValue(expires), now));
            await fileStore.AddTokenAsync(record, ct);
            Console.WriteLine(token);
            Console.Error.WriteLine($"tabula: token {record.Id} for {record.Name} ({string.Join(", ", record.Roles ?? StaffRoles.All)}), expires " +
                                    $"{(record.ExpiresAt is { } e ? e.ToString("u", CultureInfo.InvariantCulture) : "never")}, stored (hashed) in {fileStore.Root}; it is shown only now");
            return 0;
        }));

        var lstore = StoreOption();
        var json = new Option<bool>("--json") { Description = "Print JSON instead of text" };
        var list = new Command("list", "List staff tokens (never the token or its hash): id, name, roles, created, expires, last used.") { lstore, json };
        list.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var fileStore = new FileStore(result.GetValue(lstore)!);
            var uses = await fileStore.ListTokenUsesAsync(ct);
            var views = (await fileStore.ListTokensAsync(ct)).Select(t => TokenView.From(t, uses)).ToArray();
            if (result.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(views, ProvisioningJsonContext.Default.TokenViewArray));
            else
                foreach (var v in views)
                    Console.WriteLine($"{v.Id}  {v.Name}  {string.Join(",", v.Roles)}  created {v.CreatedAt.ToString("u", CultureInfo.InvariantCulture)}  " +
                                      $"expires {(v.ExpiresAt is { } e ? e.ToString("u", CultureInfo.InvariantCulture) : "never")}  " +
                                      $"last used {(v.LastUsedAt is { } u ? u.ToString("u", CultureInfo.InvariantCulture) : "never")}");
            return 0;
        }));

        var rstore = StoreOption();
        var id = new Argument<string>("id") { Description = "Token id from list (12 hex digits)" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        var revoke = new Command("revoke", "Revoke a staff token: the running server refuses it from the next request on (audited as token.revoke).")
            { rstore, id, reason };
        revoke.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var fileStore = new FileStore(result.GetValue(rstore)!);
            var revoked = await fileStore.RevokeTokenAsync(result.GetValue(id)!, "cli", result.GetValue(reason), DateTimeOffset.UtcNow, ct)
                          ?? throw new ArgumentException($"no token {result.GetValue(id)} (tabula provisioning token list)");
            Console.WriteLine($"token {revoked.Id} ({revoked.Name}) revoked");
            return 0;
        }));
        return new Command("token", "Staff bearer tokens.") { create, list, revoke };
    }

    static Command Tls() => new("tls", "TLS for the provisioning server.")
    {
        TlsInit(DevCertificateAuthority.DefaultCaName, "pin this as tls_roots.pem"),
    };

    /// <summary>
    /// `… tls init`: a private CA and a server certificate. Shared by `provisioning tls init` and `fleet tls init`,
    /// which differ only in the CA's name and in where the CA is pinned.
    /// </summary>
    internal static Command TlsInit(string caName, string pinHint)
    {
        var output = new Option<string>("--out", "-o") { Description = "Directory for ca.pem, ca.key, server.pem, server.key", Required = true };
        var hosts = new Option<string[]>("--host")
        {
            Description = "Server DNS name or IP for the certificate (repeatable; localhost and loopback are always added)",
            AllowMultipleArgumentsPerToken = true,
        };
        var days = new Option<int>("--server-days") { Description = "Server certificate validity in days", DefaultValueFactory = _ => 825 };
        var force = new Option<bool>("--force") { Description = "Replace an existing CA" };
        var init = new Command("init", $"Make a private CA and a server certificate (ECDSA P-256). ca.pem: {pinHint}.")
        {
            output, hosts, days, force,
        };
        init.SetAction((result, ct) => ProvisioningCli.RunAsync(() =>
        {
            var files = DevCertificateAuthority.Init(result.GetValue(output)!, result.GetValue(hosts) ?? [],
                DateTimeOffset.UtcNow, TimeSpan.FromDays(3650), TimeSpan.FromDays(result.GetValue(days)), result.GetValue(force), caName);
            Console.WriteLine($"CA certificate:     {files.CaCertificate} ({pinHint})");
            Console.WriteLine($"CA key:             {files.CaKey} (keep offline)");
            Console.WriteLine($"server certificate: {files.ServerCertificate}");
            Console.WriteLine($"server key:         {files.ServerKey}");
            return Task.FromResult(0);
        }));
        return init;
    }

    static Command Export()
    {
        var directory = new Argument<string>("directory") { Description = "Where to write the static tree" };
        var store = StoreOption();
        var command = new Command("export", "Write a static tree (objects, channels, groups) that any web server or CDN can mirror.")
        {
            directory, store,
        };
        command.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var summary = await StaticExporter.ExportAsync(new FileStore(result.GetValue(store)!),
                result.GetValue(directory)!, ct);
            Console.WriteLine($"exported {summary.Packages} packages, {summary.Channels} channels, {summary.Groups} groups " +
                              $"({summary.Bytes} bytes) to {Path.GetFullPath(result.GetValue(directory)!)}");
            return 0;
        }));
        return command;
    }

    static Command Channel()
    {
        var server = ProvisioningCli.ServerOption();
        var ca = ProvisioningCli.CaOption();
        var tokenFile = ProvisioningCli.TokenFileOption();
        var name = new Argument<string>("channel") { Description = "Channel name (e.g. stable)" };
        var archive = new Option<string>("--archive") { Description = "Archive SHA-256 of an accepted package", Required = true };
        var force = new Option<bool>("--force") { Description = "Move to a package with a lower release than the channel's current one (refused without it; needs --reason; audited as channel.force-move)" };
        var reason = new Option<string?>("--reason") { Description = "Why (required with --force; kept in the audit log)" };
        var set = new Command("set", "Point a channel at an accepted package (audited). Needs a token with the channels role.")
            { name, archive, force, reason, server, ca, tokenFile };
        set.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            using var client = ProvisioningCli.Client(result, server, ca, tokenFile, TimeSpan.FromMinutes(1));
            string digest = result.GetValue(archive)!;
            if (digest.StartsWith("sha256:", StringComparison.Ordinal))
                digest = digest["sha256:".Length..];
            var answer = await client.MoveChannelAsync(result.GetValue(name)!, digest, result.GetValue(force), result.GetValue(reason), ct);
            if (answer.Value is not { } entry)
            {
                ProvisioningCli.PrintError(answer.Status, answer.Error);
                return 2;
            }
            Console.WriteLine($"channel {entry.Target}: {entry.From ?? "(none)"} -> {entry.To} by {entry.Actor} at {entry.At:O}");
            return 0;
        }));
        var list = new Command("list", "List channels and where they point.") { server, ca, tokenFile };
        list.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            using var client = ProvisioningCli.Client(result, server, ca, tokenFile, TimeSpan.FromMinutes(1));
            var answer = await client.ListChannelsAsync(ct);
            if (answer.Value is not { } channels)
            {
                ProvisioningCli.PrintError(answer.Status, answer.Error);
                return 2;
            }
            foreach (var c in channels)
                Console.WriteLine($"{c.Name}\tsha256:{c.ArchiveSha256}\t{c.UpdatedAt:O}\t{c.UpdatedBy}");
            return 0;
        }));
        return new Command("channel", "Channels: named pointers to accepted packages.") { set, list };
    }

    static Command Check()
    {
        var store = StoreOption();
        var command = new Command("check", "Check a store: objects hash to their names, records point at stored objects.") { store };
        command.SetAction((result, ct) => ProvisioningCli.RunAsync(async () =>
        {
            var problems = await new FileStore(result.GetValue(store)!).CheckAsync(ct);
            foreach (string p in problems)
                Console.WriteLine(p);
            Console.Error.WriteLine(problems.Count == 0 ? "tabula: store is consistent" : $"tabula: {problems.Count} problems");
            return problems.Count == 0 ? 0 : 1;
        }));
        return command;
    }

    static Option<string> StoreOption() => new("--store")
    {
        Description = "Store directory of the provisioning server",
        Required = true,
    };
}

/// <summary>Options and error reporting shared by the provisioning verbs.</summary>
internal static class ProvisioningCli
{
    public static Option<Uri> ServerOption() => new("--server", "-s")
    {
        Description = "Provisioning server base URL, e.g. https://prov.example:8443",
        Required = true,
        CustomParser = r => Uri.TryCreate(r.Tokens.Single().Value, UriKind.Absolute, out var u) && u.Scheme is "https" or "http"
            ? u
            : throw new ArgumentException("--server must be an absolute http(s) URL"),
    };

    public static Option<FileInfo?> CaOption() => new("--ca")
    {
        Description = "Pin this CA (PEM, e.g. from `tabula provisioning tls init`) instead of the system trust store",
    };

    public static Option<FileInfo?> TokenFileOption() => new("--token-file")
    {
        Description = "File holding the staff token (default: the TABULA_TOKEN environment variable)",
    };

    public static ProvisioningClient Client(ParseResult result, Option<Uri> server, Option<FileInfo?> ca,
        Option<FileInfo?> tokenFile, TimeSpan timeout)
    {
        string? token = result.GetValue(tokenFile) is { } file
            ? File.ReadAllText(file.FullName).Trim()
            : Environment.GetEnvironmentVariable("TABULA_TOKEN");
        if (string.IsNullOrEmpty(token))
            throw new ArgumentException("a staff token is needed: set TABULA_TOKEN or pass --token-file");
        var baseUri = result.GetValue(server)!;
        if (!baseUri.AbsoluteUri.EndsWith('/'))
            baseUri = new Uri(baseUri.AbsoluteUri + "/");
        return ProvisioningClient.Create(baseUri, result.GetValue(ca)?.FullName, token, timeout);
    }

    public static void PrintError(HttpStatusCode status, ErrorBody? error) =>
        Console.Error.WriteLine($"tabula: error: server answered {(int)status}: {error?.Error ?? "unknown"}: {error?.Message}");

    /// <summary>Runs a verb: expected failures become one line on stderr and exit code 2, never a stack trace.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        try
        {
            return await body();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException
                                      or CryptographicException or HttpRequestException or TaskCanceledException
                                      or ProvisioningException or ProvisioningConfigException or InvalidOperationException)
        {
            Console.Error.WriteLine($"tabula: error: {(e.InnerException is { } inner && e is HttpRequestException ? $"{e.Message} ({inner.Message})" : e.Message).ReplaceLineEndings(" ")}");
            return 2;
        }
    }
}
