using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>`tabula fleet releases …`, `fleet ticket-key` and `machines deploy --override-freshness` as a real child process.</summary>
public sealed class FreshnessCliTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    private Task<ProcessOutput> Tabula(string token, params string[] args) =>
        TabulaCli.RunAsync([.. args, "--server", fleet.Host.Address.ToString()],
            environment: new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = token });

    [Fact]
    public async Task Fresh_releases_verbs_set_current_raise_the_floor_list_and_refuse_lowering_it_with_exit_1()
    {
        string digest = Http.NewDigest();
        var (exit, output, error) = await Tabula(fleet.AdminToken, "fleet", "releases", "set-current", "--class", "relay", "--digest", digest,
            "--release", "2", "--reason", "lab upgrade", "--json");
        Assert.True(exit == 0, error);
        Assert.Equal((digest, 2L), JsonSerializer.Deserialize(output, FleetJson.Default.ReleaseClassView) is { } v ? (v.CurrentDigest, v.CurrentRelease) : default);

        (exit, output, error) = await Tabula(fleet.AdminToken, "fleet", "releases", "floor", "--class", "relay", "--min-release", "2", "--reason", "r1 vulnerable");
        Assert.True(exit == 0, error);
        Assert.Contains("floor 2", output);
        (exit, _, error) = await Tabula(fleet.AdminToken, "fleet", "releases", "floor", "--class", "relay", "--min-release", "1", "--reason", "oops");
        Assert.Equal(1, exit);
        Assert.Contains("illegal_transition", error);
        (exit, _, error) = await Tabula(fleet.OperatorToken, "fleet", "releases", "set-current", "--class", "relay", "--digest", Http.NewDigest(),
            "--release", "3", "--reason", "not mine to do");
        Assert.Equal(1, exit);
        Assert.Contains("forbidden", error);
        (exit, _, error) = await Tabula(fleet.AdminToken, "fleet", "releases", "floor", "--class", "relay", "--min-release", "3");
        Assert.Equal(2, exit);   // --reason is required: a usage error
        Assert.Contains("--reason", error);

        (exit, output, error) = await Tabula(fleet.ViewerToken, "fleet", "releases", "list", "--json");
        Assert.True(exit == 0, error);
        var relay = Assert.Single(JsonSerializer.Deserialize(output, FleetJson.Default.ListReleaseClassView)!, c => c.MachineClass == "relay");
        Assert.Equal((2L, 2L), (relay.CurrentRelease, relay.MinRelease));
        (exit, output, _) = await Tabula(fleet.ViewerToken, "fleet", "releases", "list");
        Assert.Equal(0, exit);
        Assert.Contains($"relay: current release 2 ({digest}), floor 2", output);
    }

    [Fact]
    public async Task Ticket_key_verb_exports_the_running_controllers_public_key_and_offline_makes_one_next_to_the_database()
    {
        string dir = Directory.CreateTempSubdirectory("tabula-ticket-cli-").FullName;
        try
        {
            string pem = Path.Combine(dir, "ticket_root.pem");
            var (exit, _, error) = await Tabula(fleet.ViewerToken, "fleet", "ticket-key", "--out", pem);
            Assert.True(exit == 0, error);
            Assert.Equal(fleet.Host.TicketKey.PublicKeyPem, await File.ReadAllTextAsync(pem));

            string offline = Path.Combine(dir, "offline.pem");
            (exit, _, error) = await TabulaCli.RunAsync(["fleet", "ticket-key", "--offline", "--db", "sqlite:" + Path.Combine(dir, "fleet.db"), "--out", offline]);
            Assert.True(exit == 0, error);
            string made = Path.Combine(dir, "ticket-key.pem");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(made));
            using (var key = Security.TicketKey.Load(made)) Assert.Equal(key.PublicKeyPem, await File.ReadAllTextAsync(offline));
            Assert.NotEqual(await File.ReadAllTextAsync(pem), await File.ReadAllTextAsync(offline));
            // The same file again: the same key (serve would use it at first start).
            (exit, var printed, _) = await TabulaCli.RunAsync(["fleet", "ticket-key", "--offline", "--ticket-key", made]);
            Assert.Equal(0, exit);
            Assert.Equal(await File.ReadAllTextAsync(offline), printed);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public async Task Fresh_machines_deploy_needs_override_freshness_for_an_unreported_relay_once_releases_are_named()
    {
        (await fleet.Host.Client(fleet.AdminToken).PostAsJsonAsync("/api/v1/releases/cli-gate/current",
            new SetCurrentReleaseRequest(Http.NewDigest(), 1, "uses freshness"), FleetJson.Default.SetCurrentReleaseRequest)).EnsureSuccessStatusCode();
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, Http.NewDigest());
        var (exit, _, error) = await Tabula(fleet.OperatorToken, "fleet", "machines", "provision", relay.MachineId, "--hostname",
            "fi-hel-wg-" + Guid.NewGuid().ToString("N")[..6], "--country-code", "fi", "--country", "Finland", "--city-code", "hel", "--city", "Helsinki",
            "--provider", "creanova", "--ipv4-in", "185.204.1.204");
        Assert.True(exit == 0, error);
        (exit, _, error) = await Tabula(fleet.OperatorToken, "fleet", "machines", "deploy", relay.MachineId, "--reason", "go");
        Assert.Equal(1, exit);
        Assert.Contains("unfresh", error);
        (exit, var output, error) = await Tabula(fleet.OperatorToken, "fleet", "machines", "deploy", relay.MachineId, "--override-freshness",
            "--reason", "controller restored from backup", "--json");
        Assert.True(exit == 0, error);
        Assert.Equal("deployed", JsonSerializer.Deserialize(output, FleetJson.Default.MachineView)!.State);
        (exit, output, _) = await Tabula(fleet.OperatorToken, "fleet", "machines", "list");
        Assert.Equal(0, exit);
        string line = output.Split('\n').Single(l => l.StartsWith(relay.MachineId));
        Assert.Contains("unreported", line);
        Assert.EndsWith("  attestation absent", line.TrimEnd());   // the test relay sends no TPM evidence (issue 19)
    }
}
