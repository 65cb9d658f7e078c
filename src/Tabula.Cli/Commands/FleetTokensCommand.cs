using System.CommandLine;
using System.Text.Json;
using Tabula.Fleet.Api;

namespace Tabula.Cli.Commands;

/// <summary>`tabula fleet tokens create|list|revoke`: API tokens (admins mint them), and every staff or enrollment token listed and revoked.</summary>
internal static class FleetTokensCommand
{
    public static Command Create()
    {
        var create = new Command("create", "Mint an API token (admins only; printed once, stored as SHA-256).");
        var name = new Option<string>("--name") { Required = true, Description = "What the token is for (a laptop, a pipeline); shown in the list" };
        var expires = Expires("90d");
        var owner = new Option<string?>("--for") { Description = "The staff member the token acts as (default: you)" };
        var json = FleetCommand.Json();
        create.Options.Add(name);
        create.Options.Add(expires);
        create.Options.Add(owner);
        create.Options.Add(json);
        var remote = FleetApiClient.Options(create);
        create.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, remote);
            string path = result.GetValue(owner) is { } user ? $"/api/v1/staff/{Uri.EscapeDataString(user)}/tokens" : "/api/v1/me/tokens";
            var token = await FleetApiClient.Call(client, HttpMethod.Post, path, new CreateTokenRequest(result.GetValue(name), result.GetValue(expires)),
                FleetJson.Default.CreateTokenRequest, FleetJson.Default.TokenResponse, ct);
            PrintCreated(token!, result.GetValue(json));
            return ExitCode.Ok;
        }));

        var list = new Command("list", "List tokens (never their secrets): id, kind, owner, role, created, expires, last used. Admins see every " +
                                       "session, API and enrollment token; others their own.");
        var ljson = FleetCommand.Json();
        list.Options.Add(ljson);
        var lremote = FleetApiClient.Options(list);
        list.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, lremote);
            var tokens = await FleetApiClient.Call(client, HttpMethod.Get, "/api/v1/tokens", null, null, FleetJson.Default.ListTokenView, ct) ?? [];
            if (result.GetValue(ljson)) Console.WriteLine(JsonSerializer.Serialize(tokens, FleetJson.Default.ListTokenView));
            else
                foreach (var t in tokens)
                    Console.WriteLine($"{t.Id}  {t.Name}  owner {t.Owner}{(t.Role is { } r ? $" ({r})" : "")}  created {t.CreatedAt:u}  " +
                                      $"expires {(t.ExpiresAt is { } e ? e.ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "never")}  " +
                                      $"last used {(t.LastUsedAt is { } u ? u.ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "never")}" +
                                      (t.SingleUse ? $"  single-use{(t.UsedAt is { } at ? $", used {at:u}" : "")}" : "") +
                                      (t.Machine is { } m ? $"  machine {m}" : ""));
            return ExitCode.Ok;
        }));

        var revoke = new Command("revoke", "Revoke a token: refused from the next request on, on every controller instance (audited).");
        var id = new Argument<string>("id") { Description = "Token id from list: session-N, api-N or enrollment-N" };
        var reason = new Option<string?>("--reason") { Description = "Why (in the audit log)" };
        revoke.Arguments.Add(id);
        revoke.Options.Add(reason);
        var rremote = FleetApiClient.Options(revoke);
        revoke.SetAction((result, ct) => FleetCommand.Guard(async () =>
        {
            using var client = FleetApiClient.Create(result, rremote);
            string query = result.GetValue(reason) is { } why ? "?reason=" + Uri.EscapeDataString(why) : "";
            var revoked = await FleetApiClient.Call(client, HttpMethod.Delete, $"/api/v1/tokens/{Uri.EscapeDataString(result.GetValue(id)!)}{query}",
                null, null, FleetJson.Default.TokenView, ct);
            Console.WriteLine($"{revoked!.Id} ({revoked.Kind}, {revoked.Owner}, {revoked.Name}) revoked");
            return ExitCode.Ok;
        }));
        return new Command("tokens", "Staff sessions, API tokens and enrollment tokens.") { create, list, revoke };
    }

    internal static Option<string?> Expires(string fallback) => new("--expires")
    {
        Description = $"When it stops working: a duration (90d, 12h, 30m), an ISO 8601 time, or never (default {fallback})",
    };

    internal static void PrintCreated(TokenResponse token, bool json)
    {
        if (json) { Console.WriteLine(JsonSerializer.Serialize(token, FleetJson.Default.TokenResponse)); return; }
        Console.WriteLine(token.Token);
        Console.Error.WriteLine($"tabula: {token.Id}, expires {(token.ExpiresAt is { } e ? e.ToString("u", System.Globalization.CultureInfo.InvariantCulture) : "never")}; " +
                                "the token is shown only now");
    }
}
