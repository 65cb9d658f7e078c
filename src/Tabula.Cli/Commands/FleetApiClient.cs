using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tabula.Fleet.Api;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Cli.Commands;

/// <summary>The remote fleet verbs' side of the staff HTTP API: --server/--token/--ca, a pinned client, one call with the controller's error body.</summary>
internal static class FleetApiClient
{
    internal sealed record Remote(Option<string> Server, Option<string?> Token, Option<string?> Ca);

    internal static Remote Options(Command command)
    {
        var server = new Option<string>("--server")
        {
            Description = "Controller URL (default: $TABULA_FLEET_SERVER or http://127.0.0.1:8380)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_SERVER") ?? "http://127.0.0.1:8380",
        };
        var token = new Option<string?>("--token") { Description = "Staff API token (default: $TABULA_FLEET_TOKEN)" };
        var ca = new Option<string?>("--ca")
        {
            Description = "For an https:// server: trust only this CA (PEM, e.g. ca.pem of `tabula fleet tls init`) instead of the system store (default: $TABULA_FLEET_CA)",
            DefaultValueFactory = _ => Environment.GetEnvironmentVariable("TABULA_FLEET_CA"),
        };
        command.Options.Add(server);
        command.Options.Add(token);
        command.Options.Add(ca);
        return new Remote(server, token, ca);
    }

    internal static HttpClient Create(ParseResult result, Remote remote)
    {
        string token = result.GetValue(remote.Token) ?? Environment.GetEnvironmentVariable("TABULA_FLEET_TOKEN")
                       ?? throw new UsageException("--token or TABULA_FLEET_TOKEN is required");
        // With --ca, the same pinning as the relay agent's: the chain must end at one of these roots, nothing else is trusted.
        var handler = result.GetValue(remote.Ca) is { } ca
            ? PinnedHttp.Handler(new PinnedTlsRoots(CliRun.ParseFile(ca, Packaging.Limits.MaxPemBytes, "CA", bytes => Certificate.ParsePemBundle(bytes)), TimeProvider.System))
            : new SocketsHttpHandler();
        var client = new HttpClient(handler) { BaseAddress = new Uri(result.GetValue(remote.Server)!), Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    internal static async Task<T?> Call<T>(HttpClient client, HttpMethod method, string path, object? body, JsonTypeInfo? bodyInfo,
        JsonTypeInfo<T>? resultInfo, CancellationToken ct)
    {
        using var request = new HttpRequestMessage(method, path);
        if (body is not null && bodyInfo is not null) request.Content = JsonContent.Create(body, bodyInfo);
        using var response = await client.SendAsync(request, ct);
        if (!response.IsSuccessStatusCode)
        {
            string message = $"HTTP {(int)response.StatusCode}";
            try
            {
                if (await response.Content.ReadFromJsonAsync(FleetJson.Default.ErrorBody, ct) is { } error) message = $"{error.Message} ({error.Error})";
            }
            catch (JsonException) { }
            throw new FleetCommand.RefusedException(message);
        }
        return resultInfo is null || response.StatusCode == System.Net.HttpStatusCode.NoContent
            ? default : await response.Content.ReadFromJsonAsync(resultInfo, ct);
    }
}
