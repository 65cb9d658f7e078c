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
        var privateAddresses = new Option<bool>("--relay-private-addresses")
        {
            Description = "Accept relay in- and egress addresses in the private ranges relays block (RFC 1918, 100.64/10, fc00::/7) at provision: " +
                          "a fleet on a private network. Off: refused",
        };
        var ticketKey = new Option<string?>("--ticket-key")
        {
            Description = "Boot-ticket key (Ed25519 PKCS#8 PEM, mode 0600), made at first start if missing; export its public half with " +
                          "`tabula fleet ticket-key` (default: $TABULA_FLEET_TICKET_KEY, else ticket-key.pem next to the SQLite database; " +
                          "required with PostgreSQL: the same file on every instance)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TICKET_KEY"),
        };
        var secretsKey = FleetCommand.SecretsKey();
        var attestation = new Option<string>("--attestation")
        {
            Description = "required: a relay must attest with its TPM at enrollment (EK chain, AK activation, quote, event log, allowed package) " +
                          "or it is never put into service; optional: evidence is checked and recorded when sent (default: $TABULA_FLEET_ATTESTATION or optional)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_ATTESTATION") ?? "optional",
        };
        attestation.AcceptOnlyFromAmong("required", "optional");
        var tpmRoots = new Option<string?>("--tpm-roots")
        {
            Description = "TPM manufacturer roots (PEM bundle) relays' EK certificates must chain to; required with --attestation required " +
                          "(default: $TABULA_FLEET_TPM_ROOTS)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_TPM_ROOTS"),
        };
        var attestationCa = FleetCommand.AttestationCa();
        var creation = new Option<string>("--account-creation")
        {
            Description = "How POST /app/v1/accounts admits customers: voucher (a code from `tabula fleet vouchers create`), " +
                          "proof-of-work (a voucher or a solved challenge), open (anyone; explicit only) (default: $TABULA_FLEET_ACCOUNT_CREATION or voucher)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_ACCOUNT_CREATION") ?? "voucher",
        };
        creation.AcceptOnlyFromAmong("voucher", "proof-of-work", "open");
        var powBits = new Option<int>("--pow-bits") { Description = "Proof-of-work difficulty in leading zero bits, 1-32", DefaultValueFactory = _ => Fleet.FleetLimits.DefaultProofOfWorkBits };
        var quarantine = new Option<TimeSpan>("--address-quarantine")
        {
            Description = "A removed device's tunnel addresses are reused only after every relay applied the removal and this time passed (d.hh:mm:ss)",
            DefaultValueFactory = _ => Fleet.FleetLimits.DefaultAddressQuarantine,
        };
        var churn = new Option<int>("--device-adds-per-window") { Description = "Devices an account may add per --device-churn-window (more: 429)", DefaultValueFactory = _ => Fleet.FleetLimits.DefaultDeviceAddsPerWindow };
        var churnWindow = new Option<TimeSpan>("--device-churn-window") { Description = "The window of --device-adds-per-window (d.hh:mm:ss)", DefaultValueFactory = _ => Fleet.FleetLimits.DefaultDeviceChurnWindow };
        var capacity = new Option<int>("--fleet-capacity")
        {
            Description = $"Devices the whole fleet may hold (more: 409 fleet_full); every relay holds every device, so at most kernel WireGuard's " +
                          $"{Fleet.Protocol.PeerCapacity.KernelMaxPeers} peers per device",
            DefaultValueFactory = _ => Fleet.Protocol.PeerCapacity.DefaultFleetCapacity,
        };
        var rateLimits = new Option<string>("--rate-limits") { Description = "on: per-source and per-credential request budgets on every endpoint group (docs/fleet.md); off: none (a front end limits)", DefaultValueFactory = _ => "on" };
        rateLimits.AcceptOnlyFromAmong("on", "off");
        var rateScale = new Option<int>("--rate-limit-scale") { Description = "Multiply every request budget by this (a big fleet behind few addresses; benchmarks)", DefaultValueFactory = _ => 1 };
        var maxConnections = new Option<int>("--max-connections") { Description = "Connections held at once, all clients", DefaultValueFactory = _ => Fleet.FleetLimits.DefaultMaxConnections };
        var perClient = new Option<int>("--max-connections-per-client") { Description = "Connections one client address (IPv6: its /64) may hold at once", DefaultValueFactory = _ => Fleet.FleetLimits.DefaultMaxConnectionsPerClient };
        var staffTotp = new Option<string>("--staff-totp")
        {
            Description = "required: operators and admins need TOTP to log in with a password (without it, a login can only enroll it); " +
                          "optional: a password alone logs them in (audited as staff.totp-optional at every start) (default: $TABULA_FLEET_STAFF_TOTP or required)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_STAFF_TOTP") ?? "required",
        };
        staffTotp.AcceptOnlyFromAmong("required", "optional");
        var lockout = new Option<int>("--login-lockout")
        {
            Description = $"Failed logins in a row after which a staff member is locked out until an admin runs `tabula fleet staff unlock` (1-{Fleet.FleetLimits.MaxLoginLockoutThreshold})",
            DefaultValueFactory = _ => Fleet.FleetLimits.DefaultLoginLockoutThreshold,
        };
        var command = new Command("serve", "Run a controller instance (several may share one PostgreSQL database).")
        {
            db, urls, tlsCert, tlsKey, v4, v6, resolvers, blocked, privateAddresses, ticketKey, secretsKey, creation, powBits, quarantine, churn, churnWindow, capacity, rateLimits, rateScale, maxConnections, perClient,
            staffTotp, lockout, attestation, tpmRoots, attestationCa,
        };
        command.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            var app = await FleetServer.CreateAsync(new FleetOptions
            {
                Database = result.GetValue(db)!, Urls = result.GetValue(urls)!,
                TlsCertificatePath = result.GetValue(tlsCert), TlsKeyPath = result.GetValue(tlsKey),
                Ipv4Pool = result.GetValue(v4)!, Ipv6Pool = result.GetValue(v6)!,
                RelayResolvers = result.GetValue(resolvers) ?? [], RelayBlockedPrefixes = result.GetValue(blocked) ?? [], RelayPrivateAddresses = result.GetValue(privateAddresses),
                TicketKeyPath = result.GetValue(ticketKey), SecretsKeyPath = result.GetValue(secretsKey),
                AccountCreation = result.GetValue(creation) switch { "open" => AccountCreation.Open, "proof-of-work" => AccountCreation.ProofOfWork, _ => AccountCreation.Voucher },
                ProofOfWorkBits = result.GetValue(powBits), AddressQuarantine = result.GetValue(quarantine),
                DeviceAddsPerWindow = result.GetValue(churn), DeviceChurnWindow = result.GetValue(churnWindow),
                FleetCapacity = result.GetValue(capacity),
                RateLimits = new FleetRateLimits { Enabled = result.GetValue(rateLimits) == "on" }.Scaled(result.GetValue(rateScale) is > 0 and var scale
                    ? scale : throw new UsageException("--rate-limit-scale is a positive integer")),
                MaxConnections = result.GetValue(maxConnections), MaxConnectionsPerClient = result.GetValue(perClient),
                StaffTotp = result.GetValue(staffTotp) == "optional" ? StaffTotp.Optional : StaffTotp.Required,
                LoginLockoutThreshold = result.GetValue(lockout),
                Attestation = result.GetValue(attestation) == "required" ? AttestationPolicy.Required : AttestationPolicy.Optional,
                TpmRootsPath = result.GetValue(tpmRoots), AttestationCaPath = result.GetValue(attestationCa),
            }, ct);
            await app.RunAsync();
            return ExitCode.Ok;
        }));
        return command;
    }
}
