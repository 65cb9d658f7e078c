using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet vouchers create|list|revoke`: codes that let a customer create an account (audited; stored hashed).</summary>
internal static class FleetVouchersCommand
{
    public static Command Create()
    {
        var create = new Command("create", "Issue a voucher code for account creation (printed once; only its hash is stored).");
        var name = new Option<string>("--name") { Required = true, Description = "What the voucher is for (an order, an event); shown in the list" };
        var uses = new Option<int?>("--uses") { Description = "Accounts it may create (default 1)" };
        var days = new Option<int?>("--valid-days") { Description = "Days until it expires (default 30)" };
        var json = FleetCommand.Json();
        create.Options.Add(name);
        create.Options.Add(uses);
        create.Options.Add(days);
        create.Options.Add(json);
        var remote = FleetApiClient.Options(create);
        create.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            var created = await FleetApiClient.Call(client, HttpMethod.Post, "/api/v1/vouchers",
                new CreateVoucherRequest(result.GetValue(name), result.GetValue(uses), result.GetValue(days)),
                FleetJson.Default.CreateVoucherRequest, FleetJson.Default.VoucherCreated, ct);
            Console.WriteLine(result.GetValue(json) ? JsonSerializer.Serialize(created!, FleetJson.Default.VoucherCreated) : created!.Code);
            return ExitCode.Ok;
        }));

        var list = new Command("list", "List vouchers (never their codes): uses, expiry, who issued and revoked them.");
        var ljson = FleetCommand.Json();
        list.Options.Add(ljson);
        var lremote = FleetApiClient.Options(list);
        list.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, lremote);
            var vouchers = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/vouchers", null, null, FleetJson.Default.ListVoucherView, ct) ?? [];
            if (result.GetValue(ljson)) Console.WriteLine(JsonSerializer.Serialize(vouchers, FleetJson.Default.ListVoucherView));
            else
                foreach (var v in vouchers)
                    Console.WriteLine($"{v.Id}  {v.Name}  used {v.Uses}/{v.MaxUses}  by {v.CreatedBy}  " +
                                      (v.RevokedAt is { } r ? $"revoked {r:u}" : v.ExpiresAt is { } e ? $"expires {e:u}" : "no expiry"));
            return ExitCode.Ok;
        }));

        var revoke = new Command("revoke", "Revoke a voucher: no more accounts from it.");
        var id = new Argument<long>("id") { Description = "Voucher id (from list)" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        revoke.Arguments.Add(id);
        revoke.Options.Add(reason);
        var rremote = FleetApiClient.Options(revoke);
        revoke.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, rremote);
            string query = result.GetValue(reason) is { } why ? "?reason=" + Uri.EscapeDataString(why) : "";
            await FleetApiClient.Call<RevisionResponse>(client, HttpMethod.Delete, $"/api/v1/vouchers/{result.GetValue(id)}{query}", null, null, null, ct);
            Console.WriteLine($"voucher {result.GetValue(id)} revoked");
            return ExitCode.Ok;
        }));
        return new Command("vouchers", "Vouchers for customer account creation (the default gate of POST /app/v1/accounts).") { create, list, revoke };
    }
}
