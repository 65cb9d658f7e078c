using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Authentication;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Tabula.Fleet.Api;
using Tabula.Fleet.Core;
using Tabula.Fleet.Tests.Support;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The controller on a real https:// Kestrel endpoint with a dev CA from `tabula fleet tls init`'s code; clients pin
/// that CA the way the relay agent does (<see cref="PinnedTlsRoots"/>, custom root trust, no system store).
/// </summary>
public sealed class HttpsTests : IAsyncLifetime
{
    readonly string dir = Directory.CreateTempSubdirectory("tabula-fleet-https-").FullName;
    DevTlsFiles tls = null!;
    WebApplication app = null!;
    Uri address = null!;
    string adminToken = "", enrollmentToken = "";

    public async Task InitializeAsync()
    {
        tls = DevCertificateAuthority.Init(Path.Combine(dir, "tls"), [], DateTimeOffset.UtcNow, TimeSpan.FromDays(3650), TimeSpan.FromDays(30),
            caName: "Tabula fleet CA");
        app = await FleetServer.CreateAsync(new FleetOptions
        {
            Database = "sqlite:" + Path.Combine(dir, "fleet.db"), Urls = "https://127.0.0.1:0",
            TlsCertificatePath = tls.ServerCertificate, TlsKeyPath = tls.ServerKey, LogLevel = Microsoft.Extensions.Logging.LogLevel.Warning,
        });
        await app.StartAsync();
        address = app.HttpsAddress()!;
        var staff = app.Services.GetRequiredService<StaffService>();
        var enrollment = app.Services.GetRequiredService<EnrollmentService>();
        adminToken = await staff.CreateApiTokenAsync(await staff.CreateStaffAsync("test", "alice", FleetFixture.AdminPassword, StaffRole.Admin, default), "tests", default);
        enrollmentToken = await enrollment.CreateEnrollmentTokenAsync("test", "relays", default);
    }

    public async Task DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        Microsoft.Data.Sqlite.SqliteConnection.ClearAllPools();
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
    }

    /// <summary>A client that trusts only the CA in <paramref name="caPem"/>, speaking exactly <paramref name="version"/>.</summary>
    (HttpClient Client, PinnedTlsRoots Pinned) Pinned(string caPem, Version version)
    {
        var pinned = PinnedTlsRoots.LoadPemFile(caPem, TimeProvider.System);
        var client = PinnedHttp.Client(address, pinned, TimeSpan.FromSeconds(30));
        client.DefaultRequestVersion = version;
        client.DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact;
        return (client, pinned);
    }

    [Theory]
    [InlineData(2, 0)]
    [InlineData(1, 1)]
    public async Task Client_pinning_the_dev_ca_enrolls_a_relay_and_reads_it_back_over_https(int major, int minor)
    {
        var version = new Version(major, minor);
        var (client, pinned) = Pinned(tls.CaCertificate, version);
        using (client)
        {
            var relay = new TestRelay();
            await relay.EnrollAsync(client, enrollmentToken, Http.NewDigest());

            using var request = new HttpRequestMessage(HttpMethod.Get, "/api/v1/machines?state=awaiting")
            {
                Version = version, VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            };
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", adminToken);
            using var response = await client.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(version, response.Version);                                      // ALPN chose what the client asked for
            var machines = await response.Content.ReadFromJsonAsync(FleetJson.Default.ListMachineView);
            Assert.Contains(machines!, m => m.Id == relay.MachineId);
            Assert.Null(pinned.LastRefusal);
        }
    }

    [Fact]
    public async Task Client_that_does_not_trust_the_dev_ca_is_refused_in_the_handshake()
    {
        using var systemTrust = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
        var error = await Assert.ThrowsAsync<HttpRequestException>(() => systemTrust.GetAsync("/metrics"));
        Assert.IsType<AuthenticationException>(error.InnerException);

        var other = DevCertificateAuthority.Init(Path.Combine(dir, "other"), [], DateTimeOffset.UtcNow, TimeSpan.FromDays(3650), TimeSpan.FromDays(30));
        var (client, pinned) = Pinned(other.CaCertificate, new Version(2, 0));
        using (client)
        {
            error = await Assert.ThrowsAsync<HttpRequestException>(() => client.GetAsync("/metrics"));
            Assert.IsType<AuthenticationException>(error.InnerException);
            Assert.Contains("does not chain to the pinned roots", pinned.LastRefusal);
        }
    }

    [Fact]
    public async Task Staff_cli_reaches_the_https_controller_with_ca_and_is_refused_without_it()
    {
        var token = new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = adminToken };
        var (exit, output, error) = await TabulaCli.RunAsync(
            ["fleet", "machines", "list", "--json", "--server", address.ToString(), "--ca", tls.CaCertificate], environment: token);
        Assert.True(exit == 0, error);
        Assert.StartsWith("[", output.TrimStart());

        (exit, _, error) = await TabulaCli.RunAsync(["fleet", "machines", "list", "--server", address.ToString()], environment: token);
        Assert.Equal(2, exit);
        Assert.Contains("SSL connection could not be established", error);
    }

    [Fact]
    public async Task Fleet_tls_init_writes_a_ca_named_for_the_fleet_that_image_relay_can_pin()
    {
        var (exit, output, error) = await TabulaCli.RunAsync(["fleet", "tls", "init", "--out", Path.Combine(dir, "cli-tls")]);
        Assert.True(exit == 0, error);
        Assert.Contains("--fleet-ca", output);
        var ca = Assert.Single(Certificate.ParsePemBundle(File.ReadAllBytes(Path.Combine(dir, "cli-tls", DevCertificateAuthority.CaCertificateFile))));
        Assert.Equal("Tabula fleet CA", ca.CommonName);
        Assert.True(ca.IsCertificateAuthority);
        foreach (string file in new[] { "ca.key", "server.pem", "server.key" })
            Assert.True(File.Exists(Path.Combine(dir, "cli-tls", file)), file);
    }

    [Fact]
    public async Task Https_address_without_a_certificate_or_a_certificate_without_https_is_refused_at_start()
    {
        string database = "sqlite:" + Path.Combine(dir, "refused.db");
        var error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions { Database = database, Urls = "https://127.0.0.1:0" }));
        Assert.Contains("--tls-cert", error.Message);
        error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions
        {
            Database = database, Urls = "http://127.0.0.1:0", TlsCertificatePath = tls.ServerCertificate, TlsKeyPath = tls.ServerKey,
        }));
        Assert.Contains("no listen address is https://", error.Message);
        error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions
        {
            Database = database, Urls = "https://127.0.0.1:0", TlsCertificatePath = tls.ServerCertificate, TlsKeyPath = tls.CaKey,
        }));
        Assert.Contains("cannot load the TLS certificate", error.Message);

        var (exit, _, stderr) = await TabulaCli.RunAsync(["fleet", "serve", "--db", database, "--urls", "https://127.0.0.1:0"]);
        Assert.Equal(2, exit);
        Assert.Contains("--tls-cert", stderr);
    }

    [Theory]
    [InlineData("--relay-blocked-prefix", "10.0.0.1/8", "no host bits")]
    [InlineData("--relay-blocked-prefix", "192.0.2.0", "not a prefix")]
    [InlineData("--relay-blocked-prefix", "192.0.2.0/33", "not a prefix")]
    [InlineData("--relay-resolver", "resolver.example", "not an IP address")]
    [InlineData("--relay-resolver", "10.64.0.53", "inside a tunnel pool")]
    public async Task Malformed_relay_egress_options_are_refused_at_start(string option, string value, string message)
    {
        string database = "sqlite:" + Path.Combine(dir, "egress-refused.db");
        var options = new FleetOptions { Database = database, Urls = "http://127.0.0.1:0" };
        options = option == "--relay-resolver" ? options with { RelayResolvers = [value] } : options with { RelayBlockedPrefixes = [value] };
        var error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(options));
        Assert.Contains(option, error.Message);
        Assert.Contains(message, error.Message);

        var (exit, _, stderr) = await TabulaCli.RunAsync(["fleet", "serve", "--db", database, "--urls", "http://127.0.0.1:0", option, value]);
        Assert.Equal(2, exit);
        Assert.Contains(message, stderr);
    }

    [Fact]
    public async Task A_listen_address_inside_a_tunnel_pool_is_refused_at_start()
    {
        // Customers would reach the controller at a tunnel address (each relay refuses a pool overlapping a management endpoint).
        string database = "sqlite:" + Path.Combine(dir, "listen-in-pool.db");
        var error = await Assert.ThrowsAsync<ArgumentException>(() => FleetServer.CreateAsync(new FleetOptions
        {
            Database = database, Urls = "https://10.64.0.7:0", TlsCertificatePath = tls.ServerCertificate, TlsKeyPath = tls.ServerKey,
        }));
        Assert.Contains("10.64.0.7 lies inside a tunnel pool", error.Message);
        var (exit, _, stderr) = await TabulaCli.RunAsync(["fleet", "serve", "--db", database, "--urls", "https://[fc00:bbbb:bbbb:bb01::7]:0",
            "--tls-cert", tls.ServerCertificate, "--tls-key", tls.ServerKey]);
        Assert.Equal(2, exit);
        Assert.Contains("fc00:bbbb:bbbb:bb01::7 lies inside a tunnel pool", stderr);
    }

    [Fact]
    public async Task A_fleet_on_a_private_network_accepts_private_relay_addresses_only_when_told_and_never_special_ones()
    {
        // `fleet serve --relay-private-addresses`: the relays' default private ranges are accepted at provision (the tests'
        // own namespaces and tap networks are 10.x); special-purpose addresses and the pools still are not.
        await using var host = await FleetHost.StartAsync("sqlite:" + Path.Combine(dir, "private.db"), o => o with { RelayPrivateAddresses = true });
        var admin = await host.Staff.CreateStaffAsync("test", "alice", "a long enough password", StaffRole.Admin, CancellationToken.None);
        using var staff = host.Client(await host.Staff.CreateApiTokenAsync(admin, "tests", CancellationToken.None));
        var relay = new TestRelay();
        await relay.EnrollAsync(host.Client(), await host.Enrollment.CreateEnrollmentTokenAsync("alice", "rack", CancellationToken.None), Http.NewDigest());
        string path = $"/api/v1/machines/{relay.MachineId}/provision";
        var placement = new ProvisionRequest("lan-wg-001", "se", "Sweden", "got", "Gothenburg", "lan", true, "10.203.0.1", "fd12::1", 51820, 100, true, "lan",
            Ipv4AddrOut: "192.168.7.1");
        foreach (var bad in new[] { placement with { Ipv4AddrOut = "127.0.0.1" }, placement with { Ipv4AddrOut = "10.64.0.5" }, placement with { Ipv6AddrIn = "fe80::1" } })
            Assert.Equal(400, (await Http.ErrorOf(await staff.PostAsJsonAsync(path, bad, FleetJson.Default.ProvisionRequest))).Status);
        var response = await staff.PostAsJsonAsync(path, placement, FleetJson.Default.ProvisionRequest);
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        var config = await host.Client(relay.RelayToken).GetFromJsonAsync("/relay/v1/config", FleetJson.Default.RelayConfigView);
        Assert.Equal(("192.168.7.1", "fd12::1"), (config!.PublicIpv4, config.PublicIpv6));
    }

    [Fact]
    public void Relay_private_endpoints_are_the_controllers_own_listen_addresses_but_loopback_and_wildcards()
    {
        var settings = RelayEgressSettings.Create(new FleetOptions(), AddressPool.Default,
            [System.Net.IPAddress.Parse("10.198.0.1"), System.Net.IPAddress.Loopback, System.Net.IPAddress.IPv6Any, System.Net.IPAddress.Parse("2001:db8::9")]);
        Assert.Equal(["10.198.0.1", "2001:db8::9"], settings.PrivateEndpoints);
        Assert.Empty(settings.Resolvers);
    }
}
