using System.Net.Http.Json;
using System.Text.Json;
using Tabula.Fleet.Api;
using Tabula.Fleet.Tests.Support;

namespace Tabula.Fleet.Tests;

/// <summary>`tabula fleet …` verbs as a real child process against a real controller.</summary>
public sealed class CliTests(SqliteFleetFixture fleet) : IClassFixture<SqliteFleetFixture>
{
    private Task<ProcessOutput> Tabula(params string[] args) =>
        TabulaCli.RunAsync([.. args, "--server", fleet.Host.Address.ToString()],
            environment: new Dictionary<string, string> { ["TABULA_FLEET_TOKEN"] = fleet.OperatorToken });

    [Fact]
    public async Task Machines_and_customers_verbs_print_json_and_refusals_exit_1()
    {
        var relay = new TestRelay();
        await relay.EnrollAsync(fleet.Host.Client(), fleet.EnrollmentToken, Http.NewDigest());

        var (exit, output, error) = await Tabula("fleet", "machines", "list", "--state", "awaiting", "--json");
        Assert.True(exit == 0, error);
        var machines = JsonSerializer.Deserialize(output, FleetJson.Default.ListMachineView)!;
        Assert.Contains(machines, m => m.Id == relay.MachineId);

        (exit, output, error) = await Tabula("fleet", "machines", "provision", relay.MachineId, "--hostname", "fi-hel-wg-001", "--country-code", "fi",
            "--country", "Finland", "--city-code", "hel", "--city", "Helsinki", "--provider", "creanova", "--ipv4-in", "185.204.1.203", "--ipv4-out", "185.204.1.210", "--ipv6-out", "2a03:1b20:2:f011::10", "--json");
        Assert.True(exit == 0, error);
        var provisioned = JsonSerializer.Deserialize(output, FleetJson.Default.MachineView)!;
        Assert.Equal(("provisioned", "185.204.1.210", "2a03:1b20:2:f011::10"),
            (provisioned.State, provisioned.Placement!.Ipv4AddrOut, provisioned.Placement.Ipv6AddrOut));

        (exit, _, error) = await Tabula("fleet", "machines", "drain", relay.MachineId, "--reason", "not deployed yet");
        Assert.Equal(1, exit);
        Assert.Contains("illegal_transition", error);

        (exit, output, error) = await Tabula("fleet", "customers", "create", "--json");
        Assert.True(exit == 0, error);
        Assert.Matches("^[1-9][0-9]{15}$", JsonSerializer.Deserialize(output, FleetJson.Default.AccountView)!.Number);
    }

    [Fact]
    public async Task Vouchers_verbs_issue_list_and_revoke_and_a_voucher_creates_one_account()
    {
        var (exit, output, error) = await Tabula("fleet", "vouchers", "create", "--name", "cli test", "--uses", "2", "--json");
        Assert.True(exit == 0, error);
        var created = JsonSerializer.Deserialize(output, FleetJson.Default.VoucherCreated)!;
        Assert.StartsWith("tv_", created.Code);

        var redeemed = await fleet.Host.Client().PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest(created.Code, null, null),
            FleetJson.Default.SelfServiceAccountRequest);
        Assert.Equal(System.Net.HttpStatusCode.Created, redeemed.StatusCode);

        (exit, output, error) = await Tabula("fleet", "vouchers", "list", "--json");
        Assert.True(exit == 0, error);
        Assert.DoesNotContain(created.Code, output);
        var listed = JsonSerializer.Deserialize(output, FleetJson.Default.ListVoucherView)!.Single(v => v.Id == created.Id);
        Assert.Equal((1, 2, (DateTimeOffset?)null), (listed.Uses, listed.MaxUses, listed.RevokedAt));

        (exit, _, error) = await Tabula("fleet", "vouchers", "revoke", created.Id.ToString(System.Globalization.CultureInfo.InvariantCulture), "--reason", "test");
        Assert.True(exit == 0, error);
        (exit, _, error) = await Tabula("fleet", "vouchers", "revoke", created.Id.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(1, exit);
        Assert.Contains("not_found", error);
        var refused = await fleet.Host.Client().PostAsJsonAsync("/app/v1/accounts", new SelfServiceAccountRequest(created.Code, null, null),
            FleetJson.Default.SelfServiceAccountRequest);
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, refused.StatusCode);
    }

    [Fact]
    public async Task Tokens_and_staff_verbs_mint_list_revoke_deactivate_and_change_roles()
    {
        string user = "cli" + Guid.NewGuid().ToString("N")[..6];
        await fleet.Host.Staff.CreateStaffAsync("test", user, FleetFixture.AdminPassword, StaffRole.Viewer, CancellationToken.None);
        string[] admin = ["--token", fleet.AdminToken];

        // An operator may not mint: exit 1, forbidden. An admin mints for the new viewer, with an expiry.
        var (exit, _, error) = await Tabula("fleet", "tokens", "create", "--name", "mine");
        Assert.Equal(1, exit);
        Assert.Contains("forbidden", error);
        (exit, var output, error) = await Tabula(["fleet", "tokens", "create", "--name", "laptop", "--for", user, "--expires", "7d", "--json", .. admin]);
        Assert.True(exit == 0, error);
        var minted = JsonSerializer.Deserialize(output, FleetJson.Default.TokenResponse)!;
        Assert.StartsWith("tfa_", minted.Token);
        (exit, output, error) = await Tabula(["fleet", "enrollment-token", "create", "--name", "rack 9", "--single-use", "--expires", "1d", .. admin]);
        Assert.True(exit == 0, error);
        Assert.StartsWith("tfe_", output.Trim());
        Assert.Contains("enrollment-", error);

        (exit, output, error) = await Tabula(["fleet", "tokens", "list", "--json", .. admin]);
        Assert.True(exit == 0, error);
        Assert.DoesNotContain(minted.Token[4..], output);
        var listed = JsonSerializer.Deserialize(output, FleetJson.Default.ListTokenView)!;
        Assert.Contains(listed, t => t.Id == minted.Id && t.Owner == user && t.Role == "viewer" && t.ExpiresAt is not null);
        Assert.Contains(listed, t => t is { Kind: "enrollment", Name: "rack 9", SingleUse: true });
        (exit, output, error) = await Tabula(["fleet", "tokens", "list", .. admin]);
        Assert.True(exit == 0, error);
        Assert.Contains($"{minted.Id}  laptop  owner {user} (viewer)", output);

        (exit, output, error) = await Tabula(["fleet", "staff", "role", user, "operator", "--reason", "on call", .. admin]);
        Assert.True(exit == 0, error);
        Assert.Equal($"{user}: operator, active", output.Trim());
        (exit, _, error) = await Tabula(["fleet", "staff", "deactivate", user, "--reason", "left", .. admin]);
        Assert.True(exit == 0, error);
        (exit, _, error) = await Tabula("fleet", "machines", "list", "--token", minted.Token);
        Assert.Equal(1, exit);
        Assert.Contains("unauthenticated", error);
        (exit, _, error) = await Tabula(["fleet", "staff", "activate", user, .. admin]);
        Assert.True(exit == 0, error);

        // Issue 17: a staff member locked out by failed logins (LoginTests runs that attack; here the row is set) is let in again by
        // `staff unlock` (admins), audited.
        long id = (await fleet.Host.Staff.ListStaffAsync(CancellationToken.None)).Single(s => s.Username == user).Id;
        await fleet.Host.Store.WriteAsync(async tx => { await tx.SetStaffLockedAsync(id, tx.Now); return 0; }, CancellationToken.None);
        (exit, _, error) = await Tabula("fleet", "staff", "unlock", user);
        Assert.Equal(1, exit);
        Assert.Contains("forbidden", error);
        (exit, output, error) = await Tabula(["fleet", "staff", "unlock", user, "--reason", "verified by phone", .. admin]);
        Assert.True(exit == 0, error);
        Assert.Equal($"{user}: operator, active", output.Trim());
        var audit = await fleet.Host.Client(fleet.AdminToken).GetFromJsonAsync("/api/v1/audit", FleetJson.Default.ListAuditView);
        Assert.Contains(audit!, a => a is { Action: "staff.unlock", Reason: "verified by phone" } && a.Target == user && a.Detail!.StartsWith("locked since"));

        (exit, _, error) = await Tabula(["fleet", "tokens", "revoke", minted.Id!, "--reason", "done", .. admin]);
        Assert.Equal(1, exit);   // deactivation revoked it already
        Assert.Contains("not_found", error);
        string enrollmentId = listed.Single(t => t.Name == "rack 9").Id;
        (exit, output, error) = await Tabula(["fleet", "tokens", "revoke", enrollmentId, "--reason", "done", .. admin]);
        Assert.True(exit == 0, error);
        Assert.Contains($"{enrollmentId} (enrollment", output);
    }
}
