using System.CommandLine;
using Tabula.Fleet;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet serve`: one controller instance.</summary>
internal static class FleetServeCommand
{
    public static Command Create()
    {
        var db = FleetCommand.Database();
        var urls = new Option<string>("--urls")
        {
            Description = "Listen addresses, ';'-separated: https://IP:PORT (TLS, HTTP/2 and HTTP/1.1), http://IP:PORT (HTTP/1.1), " +
                          "h2c://IP:PORT (cleartext HTTP/2) (default: $TABULA_FLEET_URLS or http://127.0.0.1:8380)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_URLS") ?? "http://127.0.0.1:8380",
        };
        var tlsCert = new Option<string?>("--tls-cert")
        {
            Description = "Server certificate (PEM) for https:// addresses, e.g. server.pem of `tabula fleet tls init` (default: $TABULA_FLEET_TLS_CERT)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TLS_CERT"),
        };
        var tlsKey = new Option<string?>("--tls-key")
        {
            Description = "Its private key (PEM), e.g. server.key (default: $TABULA_FLEET_TLS_KEY)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TLS_KEY"),
        };
        var v4 = new Option<string>("--ipv4-pool") { Description = "Tunnel IPv4 pool for devices", DefaultValueFactory = _ => "10.64.0.0/10" };
        var v6 = new Option<string>("--ipv6-pool") { Description = "Tunnel IPv6 pool for devices", DefaultValueFactory = _ => "fc00:bbbb:bbbb:bb01::/64" };
        var resolvers = new Option<string[]>("--relay-resolver")
        {
            Description = "Upstream resolver (IP address) of the relays' in-tunnel DNS; repeat for more. None: relays serve without DNS",
            AllowMultipleArgumentsPerToken = false,
        };
        var blocked = new Option<string[]>("--relay-blocked-prefix")
        {
            Description = "A prefix (CIDR) customers may never reach, added to the relays' defaults (RFC 1918, 100.64/10, 169.254/16, fc00::/7, fe80::/10); repeatable",
        };
        var ticketKey = new Option<string?>("--ticket-key")
        {
            Description = "Boot-ticket key (Ed25519 PKCS#8 PEM, mode 0600), made at first start if missing; export its public half with " +
                          "`tabula fleet ticket-key` (default: $TABULA_FLEET_TICKET_KEY, else ticket-key.pem next to the SQLite database; " +
                          "required with PostgreSQL: the same file on every instance)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TICKET_KEY"),
        };
        var command = new Command("serve", "Run a controller instance (several may share one PostgreSQL database).") { db, urls, tlsCert, tlsKey, v4, v6, resolvers, blocked, ticketKey };
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            var app = await FleetServer.CreateAsync(new FleetOptions
            {
                Database = result.GetValue(db)!, Urls = result.GetValue(urls)!,
                TlsCertificatePath = result.GetValue(tlsCert), TlsKeyPath = result.GetValue(tlsKey),
                Ipv4Pool = result.GetValue(v4)!, Ipv6Pool = result.GetValue(v6)!,
                RelayResolvers = result.GetValue(resolvers) ?? [], RelayBlockedPrefixes = result.GetValue(blocked) ?? [],
                TicketKeyPath = result.GetValue(ticketKey),
            }, ct);
            await app.RunAsync();
            return ExitCode.Ok;
        }));
        return command;
    }
}
