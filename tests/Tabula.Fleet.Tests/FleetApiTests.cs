using System.Net;
using System.Net.Http.Json;
using System.Text;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>
/// The HTTP API against a real Kestrel and a real database. Every test runs on SQLite and on PostgreSQL
/// (the derived classes at the end); without a PostgreSQL server the PostgreSQL half returns early on a
/// laptop and fails under CI (TABULA_CI).
/// </summary>
public abstract class FleetApiTests(FleetFixture fleet)
{
    private FleetHost Host => fleet.Host;
    private HttpClient Admin => Host.Client(fleet.AdminToken);
    private HttpClient Operator => Host.Client(fleet.OperatorToken);
    private HttpClient Viewer => Host.Client(fleet.ViewerToken);
    private HttpClient Anonymous => Host.Client();

    private static readonly ProvisionRequest Stockholm = new("se-sto-wg-001", "se", "Sweden", "sto", "Stockholm", "31173", true,
        "185.65.134.1", "2a03:1b20:1:f011::a01f", 51820, 100, true, "new rack");

    private async Task<TestRelay> EnrolledAsync(string? digest = null)
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, digest ?? Http.NewDigest());
        return relay;
    }

    private static ProvisionRequest Unique(ProvisionRequest p) => p with { Hostname = "se-sto-wg-" + Guid.NewGuid().ToString("N")[..8] };

    private static async Task<MachineView> OkMachine(HttpResponseMessage response)
    {
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        return (await response.Content.ReadFromJsonAsync(FleetJson.Default.MachineView))!;
    }

    private static async Task AssertError(HttpResponseMessage response, int status, string code)
    {
        var (actual, error) = await Http.ErrorOf(response);
        Assert.Equal(status, actual);
        Assert.NotNull(error);
        Assert.Equal(code, error.Error);
        Assert.False(string.IsNullOrWhiteSpace(error.Message));
    }

    [Fact]
    public async Task Relay_list_parses_with_the_Mullvad_apps_field_names_and_types()
    {
        if (!fleet.Available) return;
        var inTable = Unique(Stockholm);
        var outside = Unique(Stockholm) with { CityCode = "kir", City = "Kiruna", Latitude = 67.8558, Longitude = 20.2253 };
        foreach (var placement in new[] { inTable, outside })
        {
            var relay = await EnrolledAsync();
            await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest));
            await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("go"), FleetJson.Default.ReasonRequest));
        }
        byte[] body = await Anonymous.GetByteArrayAsync("/app/v1/relays");

        var (code, output) = await MullvadRelayListCheck.RunAsync(body);
        Assert.True(code == 0, output);
        Assert.StartsWith("ok ", output);
        var list = System.Text.Json.JsonSerializer.Deserialize(body, FleetJson.Default.RelayList)!;
        Assert.Equal((59.3293, 18.0686), (list.Locations["se-sto"].Latitude, list.Locations["se-sto"].Longitude));
        Assert.Equal((67.8558, 20.2253), (list.Locations["se-kir"].Latitude, list.Locations["se-kir"].Longitude));
        Assert.All(list.Wireguard.Relays, r => Assert.True(r.Stboot));
        Assert.Empty(list.Bridge.Relays);

        // The checker can fail: the same list without one location's latitude, or without the bridge section, is refused.
        var node = System.Text.Json.Nodes.JsonNode.Parse(body)!;
        node["locations"]!["se-kir"]!.AsObject().Remove("latitude");
        var (noLatitude, why) = await MullvadRelayListCheck.RunAsync(Encoding.UTF8.GetBytes(node.ToJsonString()));
        Assert.Equal(1, noLatitude);
        Assert.Contains("latitude", why);
        node = System.Text.Json.Nodes.JsonNode.Parse(body)!;
        node.AsObject().Remove("bridge");
        Assert.Equal(1, (await MullvadRelayListCheck.RunAsync(Encoding.UTF8.GetBytes(node.ToJsonString()))).ExitCode);
    }

    [Fact]
    public async Task Provision_refuses_a_city_without_coordinates_and_coordinates_out_of_range()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        string path = $"/api/v1/machines/{relay.MachineId}/provision";
        var unknownCity = Unique(Stockholm) with { CityCode = "kir", City = "Kiruna" };
        foreach (var bad in new[] { unknownCity, unknownCity with { Latitude = 91, Longitude = 20 }, unknownCity with { Latitude = 67.8 },
                                    Unique(Stockholm) with { Latitude = 10, Longitude = 181 } })
            await AssertError(await Operator.PostAsJsonAsync(path, bad, FleetJson.Default.ProvisionRequest), 400, "invalid_input");
        var (_, error) = await Http.ErrorOf(await Operator.PostAsJsonAsync(path, unknownCity, FleetJson.Default.ProvisionRequest));
        Assert.Contains("latitude and longitude for se-kir", error!.Message);
        Assert.Equal("awaiting", (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!.State);
    }

    [Fact]
    public async Task Enrolled_machine_waits_until_staff_provision_and_deploy_it_then_appears_in_the_relay_list()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        var awaiting = await Viewer.GetFromJsonAsync($"/api/v1/machines?state=awaiting", FleetJson.Default.ListMachineView);
        Assert.Contains(awaiting!, m => m.Id == relay.MachineId);

        var placement = Unique(Stockholm);
        var provisioned = await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest));
        Assert.Equal("provisioned", provisioned.State);
        var deployed = await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("go live"), FleetJson.Default.ReasonRequest));
        Assert.Equal("deployed", deployed.State);

        var list = await Anonymous.GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        var listed = Assert.Single(list!.Wireguard.Relays, r => r.Hostname == placement.Hostname);
        Assert.True(listed.Active);
        Assert.Equal("se-sto", listed.Location);
        Assert.Equal(Convert.ToBase64String(relay.WireGuardKey), listed.PublicKey);
        Assert.Equal("Stockholm", list.Locations["se-sto"].City);
        Assert.Contains(list.Wireguard.PortRanges, r => r[0] == 51820 && r[1] == 51820);

        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/drain", new ReasonRequest("maintenance"), FleetJson.Default.ReasonRequest));
        list = await Anonymous.GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        Assert.False(Assert.Single(list!.Wireguard.Relays, r => r.Hostname == placement.Hostname).Active);

        var audit = await Admin.GetFromJsonAsync("/api/v1/audit?limit=1000", FleetJson.Default.ListAuditView);
        var mine = audit!.Where(a => a.Target == relay.MachineId && a.Actor == "oscar").Select(a => (a.Action, a.Reason)).ToList();
        Assert.Contains(("machine.provision", "new rack"), mine);
        Assert.Contains(("machine.deploy", "go live"), mine);
        Assert.Contains(("machine.drain", "maintenance"), mine);
    }

    [Theory]
    [InlineData("deploy")]
    [InlineData("drain")]
    public async Task Illegal_transition_from_awaiting_is_409_and_changes_nothing(string action)
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/{action}", new ReasonRequest(null), FleetJson.Default.ReasonRequest),
            409, "illegal_transition");
        var machine = await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal("awaiting", machine!.State);
    }

    [Fact]
    public async Task Retired_machine_cannot_be_deployed_nor_enroll_again()
    {
        if (!fleet.Available) return;
        string digest = Http.NewDigest();
        var relay = await EnrolledAsync(digest);
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/retire", new ReasonRequest("broken"), FleetJson.Default.ReasonRequest));
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest),
            409, "illegal_transition");
        byte[] nonce = await TestRelay.NonceAsync(Anonymous, fleet.EnrollmentToken);
        await AssertError(await TestRelay.PostEnrollAsync(Anonymous, fleet.EnrollmentToken, relay.Body(nonce, digest)), 403, "forbidden");
    }

    [Fact]
    public async Task Relay_reads_its_state_and_serving_config_and_reports_aggregate_health()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        using var asRelay = Host.Client(relay.RelayToken);
        var config = await asRelay.GetFromJsonAsync("/relay/v1/config", FleetJson.Default.RelayConfigView);
        Assert.Equal(("awaiting", relay.MachineId, "10.64.0.1/10", "fc00:bbbb:bbbb:bb01::1/64"),
            (config!.State, config.MachineId, config.Ipv4Gateway, config.Ipv6Gateway));

        Assert.Equal(FleetHost.Resolvers, config.DnsUpstreams);   // fleet-wide: known before provisioning
        Assert.Null(config.PublicIpv4);

        // A public address inside a tunnel pool is refused at provision time: the relay would NAT customers to a customer's address.
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm) with { Ipv4AddrIn = "10.64.0.9" },
            FleetJson.Default.ProvisionRequest), 400, "invalid_input");
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm) with { Ipv6AddrIn = "fc00:bbbb:bbbb:bb01::9" },
            FleetJson.Default.ProvisionRequest), 400, "invalid_input");
        var placement = Unique(Stockholm) with { Port = 4433 };
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest));
        config = await asRelay.GetFromJsonAsync("/relay/v1/config", FleetJson.Default.RelayConfigView);
        Assert.Equal(("provisioned", 4433), (config!.State, config.ListenPort));
        // Egress: NATed to the placement's addresses, the fleet's resolvers and extra blocked prefixes.
        Assert.Equal((Stockholm.Ipv4AddrIn, Stockholm.Ipv6AddrIn), (config.PublicIpv4, config.PublicIpv6));
        Assert.Equal(FleetHost.Resolvers, config.DnsUpstreams);
        Assert.Equal(FleetHost.BlockedPrefixes, config.BlockedPrefixes);
        Assert.Empty(config.PrivateEndpoints!);   // this controller listens on loopback only

        using (var ok = await asRelay.PostAsJsonAsync("/relay/v1/health", new HealthReport(3, 2, 1000, 2000, 7, 11, 12_000, 13, 14, 15), FleetJson.Default.HealthReport))
            Assert.Equal(System.Net.HttpStatusCode.NoContent, ok.StatusCode);
        string metrics = await Anonymous.GetStringAsync("/metrics");
        string label = $"{{relay=\"{placement.Hostname}\"}}";
        foreach (string line in new[] { "tabula_fleet_relay_forwarded_packets" + label + " 11", "tabula_fleet_relay_forwarded_bytes" + label + " 12000",
                     "tabula_fleet_relay_isolation_dropped_packets" + label + " 13", "tabula_fleet_relay_nat_entries" + label + " 14",
                     "tabula_fleet_relay_dns_queries_answered" + label + " 15" })
            Assert.Contains(line, metrics.Split('\n'));
        Assert.DoesNotContain(relay.MachineId, metrics);
        var health = await Viewer.GetFromJsonAsync("/api/v1/health", FleetJson.Default.ListHealthView);
        var mine = Assert.Single(health!, h => h.MachineId == relay.MachineId);
        Assert.Equal((3L, 2L, 1000L, 2000L, 7L), (mine.Peers, mine.HandshakesLastMinute, mine.RxBytes, mine.TxBytes, mine.AppliedRevision));
        Assert.Contains("tabula_fleet_relay_reports", await Anonymous.GetStringAsync("/metrics"));

        await AssertError(await asRelay.PostAsJsonAsync("/relay/v1/health", new HealthReport(-1, 0, 0, 0, 0), FleetJson.Default.HealthReport), 400, "invalid_input");
        await AssertError(await asRelay.PostAsJsonAsync("/relay/v1/health", new HealthReport(0, 0, 0, 0, 0, NatEntries: -1), FleetJson.Default.HealthReport), 400, "invalid_input");
        await AssertError(await Anonymous.GetAsync("/relay/v1/config"), 401, "unauthenticated");
        await AssertError(await asRelay.GetAsync("/api/v1/health"), 401, "unauthenticated");
    }

    [Fact]
    public async Task Separate_egress_addresses_if_given_are_what_the_relay_nats_to_and_the_relay_list_keeps_the_in_addresses()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        using var asRelay = Host.Client(relay.RelayToken);
        string path = $"/api/v1/machines/{relay.MachineId}/provision";
        // Validated as the in-addresses are: the right family, and never inside a tunnel pool (customers NATed to a customer's address).
        foreach (var bad in new[] { Stockholm with { Ipv4AddrOut = "10.64.3.4" }, Stockholm with { Ipv6AddrOut = "fc00:bbbb:bbbb:bb01::77" },
                                    Stockholm with { Ipv4AddrOut = "2a03:1b20:1:f011::b" }, Stockholm with { Ipv6AddrOut = "185.65.134.2" },
                                    Stockholm with { Ipv4AddrOut = "egress.example" } })
        {
            var (status, error) = await Http.ErrorOf(await Operator.PostAsJsonAsync(path, Unique(bad), FleetJson.Default.ProvisionRequest));
            Assert.Equal((400, "invalid_input"), (status, error!.Error));
            Assert.Contains(bad.Ipv4AddrOut is null ? "ipv6_addr_out" : "ipv4_addr_out", error.Message);
        }
        Assert.Equal("awaiting", (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!.State);

        var placement = Unique(Stockholm) with { Ipv4AddrOut = "185.65.134.200", Ipv6AddrOut = "2a03:1b20:1:f011::e9" };
        var provisioned = await OkMachine(await Operator.PostAsJsonAsync(path, placement, FleetJson.Default.ProvisionRequest));
        Assert.Equal(("185.65.134.200", "2a03:1b20:1:f011::e9"), (provisioned.Placement!.Ipv4AddrOut, provisioned.Placement.Ipv6AddrOut));
        var config = await asRelay.GetFromJsonAsync("/relay/v1/config", FleetJson.Default.RelayConfigView);
        Assert.Equal(("185.65.134.200", "2a03:1b20:1:f011::e9"), (config!.PublicIpv4, config.PublicIpv6));
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("go"), FleetJson.Default.ReasonRequest));
        var list = await Anonymous.GetFromJsonAsync("/app/v1/relays", FleetJson.Default.RelayList);
        var listed = Assert.Single(list!.Wireguard.Relays, r => r.Hostname == placement.Hostname);
        Assert.Equal((Stockholm.Ipv4AddrIn, Stockholm.Ipv6AddrIn), (listed.Ipv4AddrIn, listed.Ipv6AddrIn));   // clients connect here
        Assert.DoesNotContain("185.65.134.200", await Anonymous.GetStringAsync("/app/v1/relays"));

        // Only IPv4 given separately: IPv6 egress stays on the in-address. An empty field (the dashboard's form) is "not given".
        var other = await EnrolledAsync();
        using var asOther = Host.Client(other.RelayToken);
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{other.MachineId}/provision",
            Unique(Stockholm) with { Ipv4AddrOut = "185.65.134.201", Ipv6AddrOut = "" }, FleetJson.Default.ProvisionRequest));
        config = await asOther.GetFromJsonAsync("/relay/v1/config", FleetJson.Default.RelayConfigView);
        Assert.Equal(("185.65.134.201", Stockholm.Ipv6AddrIn), (config!.PublicIpv4, config.PublicIpv6));
    }

    // Every in- and egress address a relay cannot serve at is refused at provision, with the field and why (docs/relay.md
    // "Bad egress input: who refuses what"). Documentation ranges stay accepted (Stockholm's neighbours here; the lab's internet).
    [Theory]
    [InlineData("ipv4_addr_in", "127.0.0.1", "loopback")]
    [InlineData("ipv4_addr_out", "0.0.0.0", "unspecified")]
    [InlineData("ipv4_addr_out", "224.0.0.5", "multicast")]
    [InlineData("ipv4_addr_in", "255.255.255.255", "broadcast")]
    [InlineData("ipv4_addr_out", "169.254.10.1", "link-local")]
    [InlineData("ipv6_addr_in", "::1", "loopback")]
    [InlineData("ipv6_addr_out", "::", "unspecified")]
    [InlineData("ipv6_addr_out", "ff02::1", "multicast")]
    [InlineData("ipv6_addr_in", "fe80::1", "link-local")]
    [InlineData("ipv6_addr_out", "::ffff:185.65.134.2", "IPv4-mapped")]
    [InlineData("ipv6_addr_out", "fe80::1%2", "is an IPv6 address")]
    [InlineData("ipv4_addr_out", "10.64.0.9", "inside a tunnel pool")]
    [InlineData("ipv6_addr_in", "fc00:bbbb:bbbb:bb01::9", "inside a tunnel pool")]
    [InlineData("ipv4_addr_in", "10.1.2.3", "10.0.0.0/8, a private range relays block")]
    [InlineData("ipv4_addr_out", "172.16.5.5", "172.16.0.0/12, a private range")]
    [InlineData("ipv4_addr_out", "192.168.1.1", "192.168.0.0/16, a private range")]
    [InlineData("ipv4_addr_in", "100.64.0.1", "100.64.0.0/10, a private range")]
    [InlineData("ipv6_addr_out", "fd00::1", "fc00::/7, a private range")]
    [InlineData("ipv4_addr_out", "198.18.0.7", "198.18.0.0/15, a prefix this fleet blocks (--relay-blocked-prefix)")]
    [InlineData("ipv4_addr_in", "185.65.134", "is an IPv4 address")]
    public async Task Provision_refuses_an_address_no_relay_can_serve_at_naming_the_field_and_why(string field, string address, string why)
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        var bad = Unique(Stockholm);
        bad = field switch
        {
            "ipv4_addr_in" => bad with { Ipv4AddrIn = address }, "ipv6_addr_in" => bad with { Ipv6AddrIn = address },
            "ipv4_addr_out" => bad with { Ipv4AddrOut = address }, _ => bad with { Ipv6AddrOut = address },
        };
        var (status, error) = await Http.ErrorOf(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", bad, FleetJson.Default.ProvisionRequest));
        Assert.Equal((400, "invalid_input"), (status, error!.Error));
        Assert.Contains(field, error.Message);
        Assert.Contains(why, error.Message);
        Assert.Equal("awaiting", (await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView))!.State);
    }

    [Fact]
    public async Task Unknown_machine_is_404_with_a_json_error()
    {
        if (!fleet.Available) return;
        await AssertError(await Operator.PostAsJsonAsync("/api/v1/machines/0123456789abcdef0123456789abcdef/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest),
            404, "not_found");
        await AssertError(await Viewer.GetAsync("/api/v1/machines/nope"), 404, "not_found");
    }

    [Fact]
    public async Task Roles_are_enforced_viewer_cannot_act_operator_cannot_administer_strangers_are_401()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        await AssertError(await Viewer.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm), FleetJson.Default.ProvisionRequest), 403, "forbidden");
        await AssertError(await Operator.PostAsJsonAsync("/api/v1/staff", new CreateStaffRequest("mallory", "long enough password", "admin"), FleetJson.Default.CreateStaffRequest), 403, "forbidden");
        await AssertError(await Operator.GetAsync("/api/v1/audit"), 403, "forbidden");
        await AssertError(await Anonymous.GetAsync("/api/v1/machines"), 401, "unauthenticated");
        await AssertError(await Host.Client("tfa_forged").GetAsync("/api/v1/machines"), 401, "unauthenticated");
        // A relay token is not a staff token.
        await AssertError(await Host.Client(relay.RelayToken).GetAsync("/api/v1/machines"), 401, "unauthenticated");
        var machine = await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal("awaiting", machine!.State);
    }

    [Fact]
    public async Task Reenrolled_machine_with_an_allowed_package_returns_to_deployed_otherwise_waits_for_staff()
    {
        if (!fleet.Available) return;
        string allowed = Http.NewDigest(), unknown = Http.NewDigest();
        Assert.Equal(HttpStatusCode.NoContent, (await Admin.PostAsJsonAsync("/api/v1/packages/allowed", new AllowPackageRequest(allowed, "release 1"), FleetJson.Default.AllowPackageRequest)).StatusCode);
        var relay = await EnrolledAsync(allowed);
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm), FleetJson.Default.ProvisionRequest));
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest));
        string firstToken = relay.RelayToken;

        var reboot = await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, allowed);
        Assert.Equal("deployed", reboot.State);
        var machine = await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal(Convert.ToBase64String(relay.WireGuardKey), machine!.WireguardPublicKey);   // the new boot's key
        // The previous boot's relay token no longer works.
        using (var request = new HttpRequestMessage(HttpMethod.Post, "/relay/v1/applied") { Content = JsonContent.Create(new AppliedRequest(0), FleetJson.Default.AppliedRequest) })
        {
            request.Headers.Authorization = new("Bearer", firstToken);
            await AssertError(await Anonymous.SendAsync(request), 401, "unauthenticated");
        }

        var upgrade = await relay.EnrollAsync(Anonymous, fleet.EnrollmentToken, unknown);
        Assert.Equal("awaiting", upgrade.State);
        machine = await Viewer.GetFromJsonAsync($"/api/v1/machines/{relay.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal("deployed", machine!.PreviousState);
        // Staff approve: deploy works from awaiting because the machine was provisioned before.
        Assert.Equal("deployed", (await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest("checked the new package"), FleetJson.Default.ReasonRequest))).State);
    }

    [Fact]
    public async Task Replayed_nonce_forged_signature_and_missing_token_are_refused()
    {
        if (!fleet.Available) return;
        var relay = new TestRelay();
        string digest = Http.NewDigest();
        byte[] nonce = await TestRelay.NonceAsync(Anonymous, fleet.EnrollmentToken);
        var body = relay.Body(nonce, digest);
        using (var first = await TestRelay.PostEnrollAsync(Anonymous, fleet.EnrollmentToken, body)) first.EnsureSuccessStatusCode();
        await AssertError(await TestRelay.PostEnrollAsync(Anonymous, fleet.EnrollmentToken, body), 401, "replayed_enrollment");

        byte[] nonce2 = await TestRelay.NonceAsync(Anonymous, fleet.EnrollmentToken);
        var forged = relay.Body(nonce2, digest, signWith: Packaging.Crypto.Ed25519.NewPrivateKey());
        await AssertError(await TestRelay.PostEnrollAsync(Anonymous, fleet.EnrollmentToken, forged), 401, "forged_enrollment");
        // The forged attempt burnt its nonce too.
        await AssertError(await TestRelay.PostEnrollAsync(Anonymous, fleet.EnrollmentToken, relay.Body(nonce2, digest)), 401, "replayed_enrollment");

        await AssertError(await TestRelay.PostEnrollAsync(Anonymous, "tfe_wrong", relay.Body(nonce2, digest)), 401, "unauthenticated");
        await AssertError(await Anonymous.PostAsync("/relay/v1/enroll/nonce", null), 401, "unauthenticated");
    }

    [Fact]
    public async Task Devices_are_validated_unique_fleet_wide_and_limited_per_account()
    {
        if (!fleet.Available) return;
        var account = await CreateAccountAsync();
        var customer = Host.Client(account.Number, "Token");
        foreach (string bad in new[] { "", "not base64!", Convert.ToBase64String(new byte[31]), Convert.ToBase64String(new byte[33]), Convert.ToBase64String(new byte[32]) })
            await AssertError(await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(bad), FleetJson.Default.AddDeviceRequest), 400, "invalid_input");

        var added = new List<DeviceView>();
        for (int i = 0; i < 5; i++)
        {
            var response = await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest);
            Assert.Equal(HttpStatusCode.Created, response.StatusCode);
            added.Add((await response.Content.ReadFromJsonAsync(FleetJson.Default.DeviceView))!);
        }
        Assert.Equal(added.Count, added.Select(d => d.Ipv4Address).Distinct().Count());
        Assert.All(added.Zip(added.Skip(1)), pair => Assert.True(pair.Second.Revision > pair.First.Revision));
        Assert.All(added, d => Assert.StartsWith("10.", d.Ipv4Address));
        await AssertError(await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(Http.NewWireGuardKey()), FleetJson.Default.AddDeviceRequest), 409, "device_limit");

        var other = Host.Client((await CreateAccountAsync()).Number, "Token");
        await AssertError(await other.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(added[0].PublicKey), FleetJson.Default.AddDeviceRequest), 409, "duplicate");

        var removed = await (await customer.DeleteAsync($"/app/v1/devices/{added[0].Id}")).Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse);
        Assert.True(removed!.Revision > added[^1].Revision);
        // The freed key may now be used by the other account.
        Assert.Equal(HttpStatusCode.Created, (await other.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(added[0].PublicKey), FleetJson.Default.AddDeviceRequest)).StatusCode);
        await AssertError(await customer.DeleteAsync($"/app/v1/devices/{added[0].Id}"), 404, "not_found");
        await AssertError(await Host.Client("0000000000000000", "Token").GetAsync("/app/v1/devices"), 401, "unauthenticated");
    }

    private async Task<AccountView> CreateAccountAsync()
    {
        var account = await Host.CreateAccountAsync(fleet.OperatorToken);
        Assert.Matches("^[1-9][0-9]{15}$", account.Number);
        Assert.Equal(5, account.DeviceLimit);
        return account;
    }

    [Fact]
    public async Task Oversized_and_malformed_bodies_get_json_errors()
    {
        if (!fleet.Available) return;
        var relay = await EnrolledAsync();
        string huge = "{\"reason\":\"" + new string('x', 100_000) + "\"}";
        await AssertError(await Operator.PostAsync($"/api/v1/machines/{relay.MachineId}/deploy", new StringContent(huge, Encoding.UTF8, "application/json")),
            413, "body_too_large");
        await AssertError(await Operator.PostAsync($"/api/v1/machines/{relay.MachineId}/provision", new StringContent("{\"hostname\":", Encoding.UTF8, "application/json")),
            400, "invalid_json");
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Stockholm with { Hostname = "Bad_Host" }, FleetJson.Default.ProvisionRequest),
            400, "invalid_input");
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm) with { Reason = new string('r', 501) }, FleetJson.Default.ProvisionRequest),
            400, "invalid_input");
    }

    [Fact]
    public async Task Hostnames_are_unique_and_a_refused_provision_changes_nothing()
    {
        if (!fleet.Available) return;
        var a = await EnrolledAsync();
        var b = await EnrolledAsync();
        var placement = Unique(Stockholm);
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{a.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest));
        await AssertError(await Operator.PostAsJsonAsync($"/api/v1/machines/{b.MachineId}/provision", placement, FleetJson.Default.ProvisionRequest), 409, "duplicate");
        var machine = await Viewer.GetFromJsonAsync($"/api/v1/machines/{b.MachineId}", FleetJson.Default.MachineView);
        Assert.Equal("awaiting", machine!.State);
        Assert.Null(machine.Placement);
    }

    [Fact]
    public async Task Relay_list_has_a_strong_etag_and_answers_304_until_it_changes()
    {
        if (!fleet.Available) return;
        var first = await Anonymous.GetAsync("/app/v1/relays");
        var etag = first.Headers.ETag!;
        Assert.False(etag.IsWeak);
        using (var again = new HttpRequestMessage(HttpMethod.Get, "/app/v1/relays"))
        {
            again.Headers.IfNoneMatch.Add(etag);
            Assert.Equal(HttpStatusCode.NotModified, (await Anonymous.SendAsync(again)).StatusCode);
        }
        var relay = await EnrolledAsync();
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/provision", Unique(Stockholm), FleetJson.Default.ProvisionRequest));
        await OkMachine(await Operator.PostAsJsonAsync($"/api/v1/machines/{relay.MachineId}/deploy", new ReasonRequest(null), FleetJson.Default.ReasonRequest));
        using var changed = new HttpRequestMessage(HttpMethod.Get, "/app/v1/relays");
        changed.Headers.IfNoneMatch.Add(etag);
        var response = await Anonymous.SendAsync(changed);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.NotEqual(etag, response.Headers.ETag);
        Assert.Contains("\"package_digest\"", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Password_login_with_totp_accepts_a_code_once_and_refuses_wrong_ones()
    {
        if (!fleet.Available) return;
        string name = "totp" + Guid.NewGuid().ToString("N")[..6];
        Assert.Equal(HttpStatusCode.Created, (await Admin.PostAsJsonAsync("/api/v1/staff", new CreateStaffRequest(name, "a long staff password", "viewer"), FleetJson.Default.CreateStaffRequest)).StatusCode);
        await AssertError(await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(name, "wrong password!!", null), FleetJson.Default.LoginRequest), 401, "unauthenticated");
        await AssertError(await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest("nobody", "wrong password!!", null), FleetJson.Default.LoginRequest), 401, "unauthenticated");

        var login = await (await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(name, "a long staff password", null), FleetJson.Default.LoginRequest))
            .Content.ReadFromJsonAsync(FleetJson.Default.LoginResponse);
        var me = Host.Client(login!.Token);
        var begin = await (await me.PostAsync("/api/v1/me/totp", null)).Content.ReadFromJsonAsync(FleetJson.Default.TotpBeginResponse);
        byte[] secret = Security.Base32.Decode(begin!.Secret);
        Assert.StartsWith("otpauth://totp/", begin.Uri);
        long step = Security.Totp.StepAt(DateTimeOffset.UtcNow);
        Assert.Equal(HttpStatusCode.NoContent, (await me.PostAsJsonAsync("/api/v1/me/totp/confirm", new CodeRequest(Security.Totp.Code(secret, step)), FleetJson.Default.CodeRequest)).StatusCode);

        await AssertError(await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(name, "a long staff password", null), FleetJson.Default.LoginRequest), 401, "unauthenticated");
        // The confirming code was used at its step: it cannot log in again (replay).
        await AssertError(await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(name, "a long staff password", Security.Totp.Code(secret, step)), FleetJson.Default.LoginRequest), 401, "unauthenticated");
        var next = await Anonymous.PostAsJsonAsync("/api/v1/login", new LoginRequest(name, "a long staff password", Security.Totp.Code(secret, step + 1)), FleetJson.Default.LoginRequest);
        Assert.Equal(HttpStatusCode.OK, next.StatusCode);

        Assert.Equal(HttpStatusCode.NoContent, (await me.PostAsync("/api/v1/logout", null)).StatusCode);
        await AssertError(await me.GetAsync("/api/v1/me"), 401, "unauthenticated");
    }

    [Fact]
    public async Task Staff_create_inspect_and_delete_customer_accounts_and_their_devices_leave_the_peer_set()
    {
        if (!fleet.Available) return;
        var created = await Operator.PostAsJsonAsync("/api/v1/customers", new CreateAccountRequest(2), FleetJson.Default.CreateAccountRequest);
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var account = (await created.Content.ReadFromJsonAsync(FleetJson.Default.AccountView))!;
        Assert.Equal(2, account.DeviceLimit);
        string number = account.Number!;
        // The number is in the creating answer only; afterwards the account shows its id, by which staff may name it too.
        Assert.Matches("^[0-9a-f]{16}$", account.Id);
        Assert.Equal("/api/v1/customers/" + account.Id, created.Headers.Location?.OriginalString);
        var customer = Host.Client(number, "Token");
        var me = (await customer.GetFromJsonAsync("/app/v1/me", FleetJson.Default.AccountView))!;
        Assert.Equal((account.Id, (string?)null), (me.Id, me.Number));
        Assert.DoesNotContain(number, await customer.GetStringAsync("/app/v1/me"));
        var byNumber = (await Viewer.GetFromJsonAsync($"/api/v1/customers/{number}", FleetJson.Default.AccountView))!;
        Assert.Equal((account.Id, (string?)null), (byNumber.Id, byNumber.Number));
        var keys = new[] { Http.NewWireGuardKey(), Http.NewWireGuardKey() };
        foreach (string key in keys)
            Assert.Equal(HttpStatusCode.Created, (await customer.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(key), FleetJson.Default.AddDeviceRequest)).StatusCode);
        var listed = await Viewer.GetFromJsonAsync($"/api/v1/customers/{account.Id}/devices", FleetJson.Default.ListDeviceView);
        Assert.NotNull(listed);
        Assert.Equal(keys.Order(), listed.Select(d => d.PublicKey).Order());

        await AssertError(await Viewer.DeleteAsync($"/api/v1/customers/{account.Id}"), 403, "forbidden");
        await AssertError(await Operator.DeleteAsync("/api/v1/customers/1234"), 404, "not_found");
        await AssertError(await Operator.DeleteAsync("/api/v1/customers/0123456789abcdef"), 404, "not_found");
        var deleted = await (await Operator.DeleteAsync($"/api/v1/customers/{number}")).Content.ReadFromJsonAsync(FleetJson.Default.RevisionResponse);
        Assert.True(deleted!.Revision >= listed.Max(d => d.Revision) + 2);
        await AssertError(await customer.GetAsync("/app/v1/devices"), 401, "unauthenticated");
        var peers = await Host.Store.ReadAsync(async tx =>
        {
            var all = new List<string>();
            await foreach (var p in tx.AllPeersAsync(CancellationToken.None)) all.Add(Convert.ToBase64String(p.PublicKey));
            return all;
        }, CancellationToken.None);
        Assert.DoesNotContain(keys[0], peers);
        Assert.DoesNotContain(keys[1], peers);
        var audit = await Admin.GetFromJsonAsync("/api/v1/audit?limit=50", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a.Action == "account.delete" && a.Actor == "oscar");
        Assert.Contains(audit!, a => a.Action == "account.delete" && a.Target == "account " + account.Id);
        Assert.DoesNotContain(audit!, a => (a.Target + a.Detail + a.Reason).Contains(number));
    }

    [Fact]
    public async Task Metrics_are_aggregates_without_keys_or_addresses()
    {
        if (!fleet.Available) return;
        var account = Host.Client((await CreateAccountAsync()).Number, "Token");
        string key = Http.NewWireGuardKey();
        var device = await (await account.PostAsJsonAsync("/app/v1/devices", new AddDeviceRequest(key), FleetJson.Default.AddDeviceRequest))
            .Content.ReadFromJsonAsync(FleetJson.Default.DeviceView);
        string metrics = await Anonymous.GetStringAsync("/metrics");
        Assert.Contains("tabula_fleet_machines{state=\"awaiting\"}", metrics);
        Assert.Matches(@"tabula_fleet_devices [1-9]", metrics);
        Assert.DoesNotContain(key, metrics);
        Assert.DoesNotContain(device!.Ipv4Address, metrics);
    }
}

public sealed class SqliteFleetApiTests(SqliteFleetFixture fleet) : FleetApiTests(fleet), IClassFixture<SqliteFleetFixture>;

[Collection(PostgresCollection.Name)]
public sealed class PostgresFleetApiTests(PostgresFleetFixture fleet) : FleetApiTests(fleet), IClassFixture<PostgresFleetFixture>;
