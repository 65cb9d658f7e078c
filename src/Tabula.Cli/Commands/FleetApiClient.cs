using System.CommandLine;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Tabula.Fleet.Api;
using Tabula.Packaging;
using Tabula.Tls;

namespace Tabula.Cli.Commands;

/// <summary>
/// The remote fleet verbs' side of the staff HTTP API: --server/--token/--ca, a pinned client, one call with the controller's
/// error body. Several controller instances (issue 18): --server repeated or comma-separated (also in
/// $TABULA_FLEET_SERVER); each request goes to the instances in that order until one answers (<see cref="FailoverHandler"/>).
/// </summary>
internal static class FleetApiClient
{
    internal sealed record Remote(Option<string[]> Server, Option<string?> Token, Option<string?> Ca);

    /// <summary>How long one instance may take to accept a connection before the next is tried.</summary>
    static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(5);

    internal static Remote Options(Command command)
    {
        var server = new Option<string[]>("--server")
        {
            Description = "Controller URL (default: $TABULA_FLEET_SERVER or http://127.0.0.1:8380). Repeat it or give a comma-separated list " +
                          "for several instances: a request goes to the next when one cannot be reached (and, for reads, when it answers 5xx)",
            DefaultValueFactory = _ => [Environment.GetEnvironmentVariable("TABULA_FLEET_SERVER") ?? "http://127.0.0.1:8380"],
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
        handler.ConnectTimeout = ConnectTimeout;
        var servers = Servers(result.GetValue(remote.Server)!);
        var client = new HttpClient(new FailoverHandler(servers, handler)) { BaseAddress = servers[0], Timeout = TimeSpan.FromSeconds(30) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>The --server values, each possibly a comma-separated list, as absolute http(s) URLs in order, none twice.</summary>
    internal static IReadOnlyList<Uri> Servers(IEnumerable<string> values)
    {
        var servers = new List<Uri>();
        foreach (string text in values.SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)))
        {
            if (!Uri.TryCreate(text, UriKind.Absolute, out var url) || (url.Scheme != Uri.UriSchemeHttp && url.Scheme != Uri.UriSchemeHttps))
                throw new UsageException($"--server must be an absolute http(s) URL; got \"{text}\"");
            if (!servers.Contains(url)) servers.Add(url);
        }
        return servers.Count > 0 ? servers : throw new UsageException("--server names no controller");
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

    /// <summary>
    /// Sends each request to the controller instances in order until one answers. Every request moves on when an instance
    /// cannot be reached (connection refused or timed out, name not resolved, TLS refused): nothing was sent to it. A read
    /// (GET, HEAD) also moves on after a broken or timed-out exchange and a 5xx, since repeating it changes nothing; a
    /// write moves on only after a 503 (the instance says it took nothing): one that may have committed before its answer
    /// was lost is not sent again (`customers create` would make a second account). Each instance is tried once per request.
    /// The last instance's answer or failure is the request's.
    /// </summary>
    internal sealed class FailoverHandler(IReadOnlyList<Uri> servers, HttpMessageHandler inner) : DelegatingHandler(inner)
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken ct)
        {
            string pathAndQuery = request.RequestUri!.PathAndQuery;   // resolved against servers[0], the client's BaseAddress
            bool read = request.Method == HttpMethod.Get || request.Method == HttpMethod.Head;
            for (int i = 0; ; i++)
            {
                bool last = i == servers.Count - 1;
                request.RequestUri = new Uri(servers[i], pathAndQuery);
                HttpResponseMessage response;
                try
                {
                    response = await base.SendAsync(request, ct);
                }
                catch (HttpRequestException e) when (!last && (NotSent(e) || read))
                {
                    continue;
                }
                // Not the caller's cancellation (nor the client's timeout, which cancels ct): the handler's connect timeout
                // (TaskCanceledException over a TimeoutException), so nothing was sent.
                catch (OperationCanceledException e) when (!last && !ct.IsCancellationRequested && (read || e.InnerException is TimeoutException))
                {
                    continue;
                }
                if (!last && (read ? (int)response.StatusCode >= 500 : response.StatusCode == System.Net.HttpStatusCode.ServiceUnavailable))
                {
                    response.Dispose();
                    continue;
                }
                return response;
            }
        }

        /// <summary>The request never reached an instance: no connection, no name, no TLS session.</summary>
        static bool NotSent(HttpRequestException e) =>
            e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.SecureConnectionError;
    }
}
